//! `#[raya::remote]`: a free function becomes a task. [`parse`] reads and checks it;
//! [`generate`] writes the registry entry, the invoker and the `remote`/`options` items.

mod generate;
mod parse;

pub(crate) use parse::RemoteFn;
