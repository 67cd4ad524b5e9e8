//! Options written on an attribute: `key = expr` pairs, flags (`detached`) and
//! `resources(name = expr, ...)`, checked against the keys the attribute allows.

use proc_macro2::TokenStream;
use syn::parse::Parser;
use syn::{Expr, LitStr};

/// The options of one attribute.
#[derive(Default)]
pub(crate) struct Opts {
    /// `name = "..."`.
    pub(crate) name: Option<LitStr>,
    /// `num_returns = N` (at least 1).
    pub(crate) num_returns: Option<u32>,
    /// Every other `key = value` (and `detached`, as `true`), in order.
    pub(crate) settings: Vec<(syn::Ident, Expr)>,
    /// `resources(name = amount, ...)`.
    pub(crate) resources: Vec<(String, Expr)>,
}

/// Parses `attr`, refusing keys not in `allowed`.
pub(crate) fn parse(attr: TokenStream, allowed: &[&str]) -> syn::Result<Opts> {
    let mut o = Opts::default();
    let parser = syn::meta::parser(|meta| {
        let Some(key) = meta.path.get_ident().cloned() else {
            return Err(meta.error("expected an option name"));
        };
        let k = key.to_string();
        if k == "resources" {
            return meta.parse_nested_meta(|inner| {
                let name = inner
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .ok_or_else(|| inner.error("expected a resource name"))?;
                let v: Expr = inner.value()?.parse()?;
                o.resources.push((name, v));
                Ok(())
            });
        }
        if !allowed.contains(&k.as_str()) {
            return Err(meta.error(format!(
                "unknown option `{k}`; expected one of: {}",
                allowed.join(", ")
            )));
        }
        if k == "name" {
            o.name = Some(meta.value()?.parse()?);
        } else if k == "num_returns" {
            let lit: syn::LitInt = meta.value()?.parse()?;
            let n: u32 = lit.base10_parse()?;
            if n == 0 {
                return Err(syn::Error::new(
                    lit.span(),
                    "num_returns must be at least 1",
                ));
            }
            o.num_returns = Some(n);
        } else if k == "detached" {
            o.settings.push((key, syn::parse_quote!(true)));
        } else {
            let v: Expr = meta.value()?.parse()?;
            o.settings.push((key, v));
        }
        Ok(())
    });
    parser.parse2(attr)?;
    Ok(o)
}
