//! What `#[raya::actor]` writes: on the type, its `raya::Actor` impl with the default options;
//! on the `impl` block, the handle's method struct, one `Method` per method, the actor-type
//! registry entry, the `raya::ActorClass` impl (constructor, methods and messages by name) and
//! `Type::remote` / `Type::options`.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::Visibility;
use syn::spanned::Spanned;

use super::parse::{ActorImpl, ActorType, MethodDef, Receiver};

impl ActorType {
    pub(crate) fn generate(&self) -> syn::Result<TokenStream> {
        let item = &self.item;
        let ident = &self.ident;
        let mut assigns = TokenStream::new();
        for (k, v) in &self.opts.settings {
            let span = v.span();
            assigns.extend(match k.to_string().as_str() {
                "detached" => quote_spanned! {span=> __o.lifetime = ::raya::Lifetime::Detached; },
                "namespace" => quote_spanned! {span=> __o.namespace = ::core::option::Option::Some((#v).to_string()); },
                "num_cpus" | "num_gpus" | "memory" => quote_spanned! {span=> __o.#k = ::core::option::Option::Some((#v) as f64); },
                "max_restarts" | "max_task_retries" => quote_spanned! {span=> __o.#k = (#v) as i64; },
                "max_concurrency" => quote_spanned! {span=> __o.max_concurrency = ::core::option::Option::Some((#v) as u32); },
                other => {
                    return Err(syn::Error::new(
                        k.span(),
                        format!("unknown actor option `{other}`"),
                    ));
                }
            });
        }
        if let Some(n) = &self.opts.name {
            assigns.extend(quote! { __o.name = ::core::option::Option::Some(#n.to_string()); });
        }
        for (k, v) in &self.opts.resources {
            assigns.extend(quote! { __o.resources.push((#k.to_string(), (#v) as f64)); });
        }
        Ok(quote! {
            #item

            #[allow(clippy::all)]
            impl ::raya::Actor for #ident {
                fn default_options() -> ::raya::ActorOptions {
                    #[allow(unused_mut)]
                    let mut __o = ::raya::ActorOptions::default();
                    #assigns
                    __o
                }
            }
        })
    }
}

impl MethodDef {
    /// `Type::method`, the method's name in calls and records.
    fn label(&self, ty_name: &syn::Ident) -> String {
        format!("{ty_name}::{}", self.ident)
    }

    /// The `MethodKind` running this method on a handle's call.
    fn kind(&self) -> TokenStream {
        let name = &self.ident;
        let takes = self.params.takes();
        let call_args = &self.params.names;
        let value = if self.ret.fallible {
            quote! { ::raya::__private::ret_result(__ret) }
        } else {
            quote! { ::raya::__private::ret(__ret) }
        };
        match (self.is_async, self.receiver) {
            (false, Receiver::Exclusive) => quote! {
                ::raya::__private::MethodKind::Mut(|__this, _ctx, __args| {
                    #takes
                    let __ret = __this.#name(#(#call_args),*);
                    #value
                })
            },
            (false, Receiver::Shared) => quote! {
                ::raya::__private::MethodKind::Ref(|__this, _ctx, __args| {
                    #takes
                    let __ret = __this.#name(#(#call_args),*);
                    #value
                })
            },
            (true, recv) => {
                let (variant, guard) = match recv {
                    Receiver::Exclusive => (
                        quote! { AsyncMut },
                        quote! { let mut __this = __cell.write()?; },
                    ),
                    Receiver::Shared => {
                        (quote! { AsyncRef }, quote! { let __this = __cell.read()?; })
                    }
                };
                quote! {
                    ::raya::__private::MethodKind::#variant(|__cell, _ctx, mut __args| {
                        ::std::boxed::Box::pin(async move {
                            let __args = &mut __args;
                            #takes
                            #guard
                            let __ret = __this.#name(#(#call_args),*).await;
                            #value
                        })
                    })
                }
            }
        }
    }
}

impl ActorImpl {
    pub(crate) fn generate(&self) -> TokenStream {
        let imp = &self.item;
        let self_ty = &imp.self_ty;
        let ty_name = &self.ty_name;
        let ctor_call_args = &self.ctor_params.names;
        let ctor_body = if self.ctor_ret.fallible {
            quote! { ::raya::__private::ctor_result(<#self_ty>::new(#(#ctor_call_args),*)) }
        } else {
            quote! { ::core::result::Result::Ok(<#self_ty>::new(#(#ctor_call_args),*)) }
        };
        let ctor_takes = self.ctor_params.takes();
        let ctor_sig = self.ctor_params.signature();
        let ctor_args = self.ctor_params.arg_list();
        let has_async = self.has_async();

        let mut handle_methods = TokenStream::new();
        let mut method_fns = TokenStream::new();
        let mut method_arms = TokenStream::new();
        for m in &self.methods {
            let name = &m.ident;
            let label = m.label(ty_name);
            let kind = m.kind();
            let ok_ty = &m.ret.ok;
            let sig_params = m.params.signature();
            let into_args = m.params.arg_list();
            let doc = format!(
                "Calls [`{ty_name}::{name}`] on the actor; the result goes to the returned object."
            );
            let vis = match &m.vis {
                Visibility::Inherited => quote! { pub },
                v => quote! { #v },
            };
            let method_fn = format_ident!("__raya_method_{}", name);
            method_fns.extend(quote! {
                #[allow(non_snake_case)]
                fn #method_fn() -> ::raya::__private::Method<#self_ty> {
                    ::raya::__private::Method { name: #label, kind: #kind }
                }
            });
            method_arms.extend(quote! { #label => ::core::option::Option::Some(#method_fn()), });
            handle_methods.extend(quote! {
                #[doc = #doc]
                #[allow(dead_code)]
                #vis fn #name(&self, #sig_params) -> ::raya::ObjectRef<#ok_ty> {
                    self.0.call(#method_fn(), #into_args)
                }
            });
        }
        let (message_paths, message_labels): (Vec<&syn::Path>, Vec<String>) = self
            .handles
            .iter()
            .map(|h| (&h.path, format!("{ty_name}::{}", h.ident)))
            .unzip();

        quote! {
            #imp

            const _: () = {
                /// The methods an `ActorHandle` of this actor exposes.
                pub struct Methods(::raya::__private::HandleRef<#self_ty>);

                impl ::core::fmt::Debug for Methods {
                    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                        ::core::fmt::Debug::fmt(&self.0, f)
                    }
                }

                impl ::core::clone::Clone for Methods {
                    fn clone(&self) -> Self {
                        Methods(::core::clone::Clone::clone(&self.0))
                    }
                }

                impl ::core::convert::From<::raya::__private::HandleRef<#self_ty>> for Methods {
                    fn from(h: ::raya::__private::HandleRef<#self_ty>) -> Self {
                        Methods(h)
                    }
                }

                impl ::core::convert::AsRef<::raya::__private::HandleRef<#self_ty>> for Methods {
                    fn as_ref(&self) -> &::raya::__private::HandleRef<#self_ty> {
                        &self.0
                    }
                }

                #method_fns

                #[allow(clippy::all)]
                impl Methods {
                    #handle_methods
                }

                /// Options of one actor creation: set them with `raya::ActorBuilder` methods, then
                /// call `remote`.
                #[derive(Debug)]
                pub struct Options(::raya::ActorOptions);

                impl ::raya::ActorBuilder for Options {
                    fn actor_options(&mut self) -> &mut ::raya::ActorOptions {
                        &mut self.0
                    }
                }

                impl Options {
                    /// Creates the actor with these options. Fails when its name is taken or an
                    /// option is invalid.
                    pub fn remote(self, #ctor_sig) -> ::raya::Result<::raya::ActorHandle<#self_ty>> {
                        ::raya::__private::create_actor::<#self_ty>(self.0, #ctor_args)
                    }
                }

                // SAFETY: linkme places this entry in the registry's link section and checks
                // its type; it is an immutable static.
                #[allow(unsafe_code)]
                #[::raya::__private::linkme::distributed_slice(::raya::__private::ACTOR_CLASSES)]
                #[linkme(crate = ::raya::__private::linkme)]
                static __RAYA_CLASS: ::raya::__private::ActorClassEntry = ::raya::__private::ActorClassEntry {
                    name: <#self_ty as ::raya::__private::ActorClass>::CLASS_NAME,
                    start: ::raya::__private::start_host::<#self_ty>,
                };

                impl ::raya::__private::ActorClass for #self_ty {
                    const CLASS_NAME: &'static str = ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ty_name));
                    const HAS_ASYNC_METHODS: bool = #has_async;
                    type Methods = Methods;
                    fn method(name: &str) -> ::core::option::Option<::raya::__private::Method<Self>> {
                        #(
                            if name == #message_labels {
                                return ::core::option::Option::Some(
                                    ::raya::__private::handler_method::<Self, #message_paths>(),
                                );
                            }
                        )*
                        match name {
                            #method_arms
                            _ => ::core::option::Option::None,
                        }
                    }
                    fn message_name(message: ::core::any::TypeId) -> ::core::option::Option<&'static str> {
                        #(
                            if message == ::core::any::TypeId::of::<#message_paths>() {
                                return ::core::option::Option::Some(#message_labels);
                            }
                        )*
                        let _ = message;
                        ::core::option::Option::None
                    }
                    fn construct(__args: &mut ::raya::__private::Args) -> ::core::result::Result<Self, ::raya::TaskError> {
                        #ctor_takes
                        #ctor_body
                    }
                }

                impl #self_ty {
                    /// Creates the actor with its default options and returns its handle. A creation
                    /// error is reported by `handle.ready()` and by every call.
                    pub fn remote(#ctor_sig) -> ::raya::ActorHandle<#self_ty> {
                        ::raya::__private::create_or_dead::<#self_ty>(
                            <#self_ty as ::raya::Actor>::default_options(),
                            #ctor_args,
                        )
                    }

                    /// The actor's default options, to change before `remote`.
                    pub fn options() -> Options {
                        Options(<#self_ty as ::raya::Actor>::default_options())
                    }
                }
            };
        }
    }
}
