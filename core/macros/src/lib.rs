//! The attributes behind `#[raya::remote]` and `#[raya::actor]`. Use them through the `raya`
//! crate, which documents them.
//!
//! Each attribute has its own module: `remote` for functions, `actor` for actor types and their
//! `impl` blocks, each split into `parse` (read and check the item, with error messages that say
//! what to change) and `generate` (write the items). `options` reads the `key = value` options
//! both take; `types` reads signatures.

#![forbid(unsafe_code)]

mod actor;
mod options;
mod remote;
mod types;

use proc_macro::TokenStream;
use syn::Item;

/// Marks a function as remote: `f::remote(args)` runs it as a task and returns an
/// `ObjectRef` to its result. See the `raya` crate documentation.
#[proc_macro_attribute]
pub fn remote(attr: TokenStream, item: TokenStream) -> TokenStream {
    match remote::RemoteFn::parse(attr.into(), item.into()) {
        Ok(f) => f.generate().into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Makes a type an actor. On the struct it implements `raya::Actor` (with default options given
/// on the attribute); on the `impl` block it registers the constructor `new` and turns every
/// method taking `&self` or `&mut self` into a message the actor's handle can send. On the
/// `impl` block, `handles(MessageType, ...)` lists the actix-native messages (types with a
/// `raya::Handler` impl) that other nodes may send it. See the `raya` crate documentation.
#[proc_macro_attribute]
pub fn actor(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = match syn::parse::<Item>(item) {
        Ok(i) => i,
        Err(e) => return e.to_compile_error().into(),
    };
    let out = match item {
        Item::Impl(i) => actor::ActorImpl::parse(attr.into(), i).map(|a| a.generate()),
        other => actor::ActorType::parse(attr.into(), other).and_then(|a| a.generate()),
    };
    match out {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}
