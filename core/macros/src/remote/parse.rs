//! Reading `#[raya::remote(...)] fn ...`: its options, parameters and results, and the checks
//! whose messages say what to change.

use proc_macro2::TokenStream;
use syn::{FnArg, ItemFn, Type};

use crate::options::{self, Opts};
use crate::types::{Params, Ret};

/// The options `#[raya::remote]` takes.
const ALLOWED: &[&str] = &[
    "name",
    "num_cpus",
    "num_gpus",
    "memory",
    "max_retries",
    "retry_exceptions",
    "num_returns",
    "scheduling_strategy",
];

/// A remote function, read and checked.
pub(crate) struct RemoteFn {
    pub(crate) item: ItemFn,
    pub(crate) opts: Opts,
    pub(crate) params: Params,
    pub(crate) ret: Ret,
    /// Values per call (1 unless `num_returns` says otherwise).
    pub(crate) num_returns: u32,
    /// With `num_returns > 1`: the types of the returned tuple's values.
    pub(crate) values: Option<Vec<Type>>,
}

impl RemoteFn {
    pub(crate) fn parse(attr: TokenStream, item: TokenStream) -> syn::Result<RemoteFn> {
        let opts = options::parse(attr, ALLOWED)?;
        let item: ItemFn = syn::parse2(item)?;
        let sig = &item.sig;
        if !sig.generics.params.is_empty() {
            return Err(syn::Error::new_spanned(
                &sig.generics,
                "remote functions cannot be generic: they are registered by name and every node must run the same code",
            ));
        }
        if let Some(FnArg::Receiver(r)) = sig.inputs.first() {
            return Err(syn::Error::new_spanned(
                r,
                "#[raya::remote] is for free functions; use #[raya::actor] on impl blocks",
            ));
        }
        let params = Params::of(sig.inputs.iter())?;
        let ret = Ret::of(&sig.output);
        let num_returns = opts.num_returns.unwrap_or(1);
        let values = if num_returns > 1 {
            match &ret.ok {
                Type::Tuple(t) if t.elems.len() == num_returns as usize => {
                    Some(t.elems.iter().cloned().collect())
                }
                _ => {
                    return Err(syn::Error::new_spanned(
                        &ret.ok,
                        format!(
                            "num_returns = {num_returns} needs the function to return a tuple of {num_returns} values"
                        ),
                    ));
                }
            }
        } else {
            None
        };
        Ok(RemoteFn {
            item,
            opts,
            params,
            ret,
            num_returns,
            values,
        })
    }

    pub(crate) fn is_async(&self) -> bool {
        self.item.sig.asyncness.is_some()
    }
}
