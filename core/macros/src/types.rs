//! Reading a signature: what a function returns as Raya stores it, and its owned parameters.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::{FnArg, GenericArgument, Pat, PathArguments, ReturnType, Type};

/// The last path segment of a type, with its generic arguments.
pub(crate) fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last(),
        _ => None,
    }
}

fn first_type_arg(seg: &syn::PathSegment) -> Option<&Type> {
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

/// What a function returns, as Raya stores it.
pub(crate) struct Ret {
    /// The stored type (the `Ok` type of a `Result`).
    pub(crate) ok: Type,
    /// Whether the function returns a `Result` whose `Err` is an application error.
    pub(crate) fallible: bool,
}

impl Ret {
    pub(crate) fn of(out: &ReturnType) -> Ret {
        match out {
            ReturnType::Default => Ret {
                ok: syn::parse_quote!(()),
                fallible: false,
            },
            ReturnType::Type(_, ty) => match last_segment(ty) {
                Some(seg) if seg.ident == "Result" && first_type_arg(seg).is_some() => Ret {
                    ok: first_type_arg(seg).cloned().expect("checked"),
                    fallible: true,
                },
                _ => Ret {
                    ok: (**ty).clone(),
                    fallible: false,
                },
            },
        }
    }
}

/// The element type of a `Vec<T>`.
pub(crate) fn vec_elem(ty: &Type) -> Option<&Type> {
    match last_segment(ty) {
        Some(seg) if seg.ident == "Vec" => first_type_arg(seg),
        _ => None,
    }
}

/// Owned parameters of a function (no receiver, no references), renamed `__a0, __a1, ...`.
pub(crate) struct Params {
    pub(crate) names: Vec<syn::Ident>,
    pub(crate) types: Vec<Type>,
    /// The user's own names, for the generated signatures.
    pub(crate) user_names: Vec<syn::Ident>,
}

impl Params {
    /// Reads `inputs`, refusing receivers, references and `impl Trait`.
    pub(crate) fn of<'a>(inputs: impl Iterator<Item = &'a FnArg>) -> syn::Result<Params> {
        let mut p = Params {
            names: Vec::new(),
            types: Vec::new(),
            user_names: Vec::new(),
        };
        for (i, arg) in inputs.enumerate() {
            let FnArg::Typed(t) = arg else {
                return Err(syn::Error::new_spanned(arg, "unexpected receiver"));
            };
            if let Type::Reference(r) = &*t.ty {
                return Err(syn::Error::new_spanned(
                    r,
                    "arguments of remote functions and actor methods must be owned values (they may cross threads and nodes): take `String`, `Vec<T>`, ... instead of references",
                ));
            }
            if let Type::ImplTrait(r) = &*t.ty {
                return Err(syn::Error::new_spanned(
                    r,
                    "`impl Trait` arguments cannot be remote: use a concrete type",
                ));
            }
            let user = match &*t.pat {
                Pat::Ident(id) => id.ident.clone(),
                _ => format_ident!("arg{}", i),
            };
            p.names.push(format_ident!("__a{}", i));
            p.user_names.push(user);
            p.types.push((*t.ty).clone());
        }
        Ok(p)
    }

    /// Takes the arguments out of `__args`, checking their number.
    pub(crate) fn takes(&self) -> TokenStream {
        let (n, t) = (&self.names, &self.types);
        let idx = 0..n.len();
        let count = n.len();
        quote! {
            __args.expect_len(#count)?;
            #( let #n: #t = __args.take(#idx)?; )*
        }
    }

    /// The parameters of a generated `remote`: each `impl IntoArg<T>`.
    pub(crate) fn signature(&self) -> TokenStream {
        let (n, t) = (&self.user_names, &self.types);
        quote! { #( #n: impl ::raya::IntoArg<#t> ),* }
    }

    /// The arguments of a generated `remote`, as task arguments.
    pub(crate) fn arg_list(&self) -> TokenStream {
        let n = &self.user_names;
        quote! { ::std::vec![ #( ::raya::IntoArg::into_arg(#n) ),* ] }
    }
}
