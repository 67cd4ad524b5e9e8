//! What `#[raya::remote]` writes: the function itself, its registry entry (name, returns, how
//! to invoke it on a worker), and the unit struct of the same name whose `remote` and `options`
//! submit it.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{LitStr, Type};

use super::RemoteFn;
use crate::types::vec_elem;

impl RemoteFn {
    pub(crate) fn generate(&self) -> TokenStream {
        let f = &self.item;
        let ident = &f.sig.ident;
        let vis = &f.vis;
        let n = self.num_returns;
        let name = match &self.opts.name {
            Some(l) => quote! { #l },
            None => {
                quote! { ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)) }
            }
        };
        let invoke = self.invoker();
        let invoke_kind = if self.is_async() {
            quote! { ::raya::__private::Invoke::Async(__invoke) }
        } else {
            quote! { ::raya::__private::Invoke::Sync(__invoke) }
        };
        let assigns = self.option_assignments();
        let sig_params = self.params.signature();
        let into_args = self.params.arg_list();
        let user_names = &self.params.user_names;
        let doc_remote =
            format!("Submits [`{ident}`](fn@{ident}) as a task with its default options.");
        let (ret_ty, submit) = self.submission(&into_args);
        let ok_ty = &self.ret.ok;
        let split_elem = if n == 1 { vec_elem(ok_ty) } else { None };
        let split = split_elem.map(|elem| {
            quote! {
                /// Submits the task asking for `__num_returns` return values: the returned vector is
                /// split into that many objects (its length must match).
                pub fn remote_split(self, __num_returns: u32, #sig_params) -> ::std::vec::Vec<::raya::ObjectRef<#elem>> {
                    ::raya::__private::submit_many(&__RAYA_FUNCTION, &self.0, #into_args, __num_returns)
                        .into_iter()
                        .map(::raya::__private::typed)
                        .collect()
                }
            }
        });
        let split_free = split_elem.map(|_| {
            quote! {
                /// Submits the task with its default options, asking for `__num_returns` return values.
                pub fn remote_split(__num_returns: u32, #sig_params) -> ::std::vec::Vec<::raya::ObjectRef<<#ok_ty as ::core::iter::IntoIterator>::Item>> {
                    Self::options().remote_split(__num_returns, #(#user_names),*)
                }
            }
        });
        let struct_doc = format!(
            "The remote form of [`{ident}`](fn@{ident}): `{ident}::remote(..)` runs it as a task; \
             `{ident}::options()` sets per-call options first."
        );
        quote! {
            #f

            #[doc = #struct_doc]
            #[allow(non_camel_case_types)]
            #vis struct #ident {}

            const _: () = {
                #invoke

                // SAFETY: linkme places this entry in the registry's link section and checks
                // its type; it is an immutable static.
                #[allow(unsafe_code)]
                #[::raya::__private::linkme::distributed_slice(::raya::__private::REMOTE_FUNCTIONS)]
                #[linkme(crate = ::raya::__private::linkme)]
                static __RAYA_FUNCTION: ::raya::__private::FunctionEntry = ::raya::__private::FunctionEntry {
                    name: #ident::NAME,
                    num_returns: #n,
                    invoke: #invoke_kind,
                };

                /// Per-call options: set them with `raya::TaskBuilder` methods, then call `remote`.
                #[derive(Debug)]
                pub struct Options(::raya::TaskOptions);

                impl ::raya::TaskBuilder for Options {
                    fn task_options(&mut self) -> &mut ::raya::TaskOptions {
                        &mut self.0
                    }
                }

                impl Options {
                    /// Submits the task with these options.
                    pub fn remote(self, #sig_params) -> #ret_ty {
                        #submit
                    }
                    #split
                }

                #[allow(clippy::all)]
                impl #ident {
                    /// The name the function is registered under.
                    pub const NAME: &'static str = #name;

                    /// The function's default options (from its attribute), to change per call.
                    pub fn options() -> Options {
                        #[allow(unused_mut)]
                        let mut __o = ::raya::TaskOptions::default();
                        #assigns
                        Options(__o)
                    }

                    #[doc = #doc_remote]
                    pub fn remote(#sig_params) -> #ret_ty {
                        Self::options().remote(#(#user_names),*)
                    }
                    #split_free
                }
            };
        }
    }

    /// `__invoke`: takes the arguments, calls the function, turns its result into values.
    fn invoker(&self) -> TokenStream {
        let ident = &self.item.sig.ident;
        let call_args = &self.params.names;
        let call = if self.is_async() {
            quote! { #ident(#(#call_args),*).await }
        } else {
            quote! { #ident(#(#call_args),*) }
        };
        let value = if self.ret.fallible {
            quote! { __ret.map_err(::raya::__private::app_error)? }
        } else {
            quote! { __ret }
        };
        let convert = match &self.values {
            None if vec_elem(&self.ret.ok).is_some() => {
                quote! { ::raya::__private::ret_split(#value, __args_n) }
            }
            None => quote! { ::raya::__private::ret(#value) },
            Some(values) => {
                let xs: Vec<syn::Ident> = (0..values.len())
                    .map(|i| format_ident!("__x{}", i))
                    .collect();
                quote! {
                    let (#(#xs),*) = #value;
                    Ok(::std::vec![ #( ::raya::__private::RayaValue::new(#xs) ),* ])
                }
            }
        };
        let takes = self.params.takes();
        if self.is_async() {
            quote! {
                fn __invoke(mut __args: ::raya::__private::Args) -> ::raya::__private::LocalFuture {
                    ::std::boxed::Box::pin(async move {
                        let __args_n = __args.num_returns();
                        let _ = __args_n;
                        #takes
                        let __ret = #call;
                        #convert
                    })
                }
            }
        } else {
            quote! {
                fn __invoke(__args: &mut ::raya::__private::Args) -> ::raya::__private::Output {
                    let __args_n = __args.num_returns();
                    let _ = __args_n;
                    #takes
                    let __ret = #call;
                    #convert
                }
            }
        }
    }

    /// The attribute's options, as assignments to a `TaskOptions` named `__o`.
    fn option_assignments(&self) -> TokenStream {
        let mut settings = self.opts.settings.clone();
        for (k, v) in &self.opts.resources {
            let k = LitStr::new(k, Span::call_site());
            settings.push((format_ident!("__resource"), syn::parse_quote!((#k, #v))));
        }
        let mut out = TokenStream::new();
        for (k, v) in &settings {
            let span = v.span();
            out.extend(match k.to_string().as_str() {
                "num_cpus" | "num_gpus" | "memory" => {
                    quote_spanned! {span=> __o.#k = (#v) as f64; }
                }
                "__resource" => quote_spanned! {span=>
                    { let (__n, __a) = #v; __o.resources.push((__n.to_string(), __a as f64)); }
                },
                _ => quote_spanned! {span=> __o.#k = #v; },
            });
        }
        out
    }

    /// The type `remote` returns and how it submits the task.
    fn submission(&self, into_args: &TokenStream) -> (TokenStream, TokenStream) {
        let n = self.num_returns;
        let ok_ty = &self.ret.ok;
        match &self.values {
            None => (
                quote! { ::raya::ObjectRef<#ok_ty> },
                quote! { ::raya::__private::submit_one(&__RAYA_FUNCTION, &self.0, #into_args) },
            ),
            Some(values) => {
                let tys: Vec<&Type> = values.iter().collect();
                let nexts = tys.iter().map(|_| {
                    quote! { ::raya::__private::typed(__r.next().expect("one reference per return")) }
                });
                (
                    quote! { ( #( ::raya::ObjectRef<#tys> ),* ) },
                    quote! {{
                        let mut __r = ::raya::__private::submit_many(&__RAYA_FUNCTION, &self.0, #into_args, #n).into_iter();
                        ( #( #nexts ),* )
                    }},
                )
            }
        }
    }
}
