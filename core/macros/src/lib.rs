//! The attributes behind `#[raya::remote]` and `#[raya::actor]`. Use them through the `raya`
//! crate, which documents them.

#![warn(missing_docs)]

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as Ts};
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::spanned::Spanned;
use syn::{
    Expr, FnArg, GenericArgument, ImplItem, ImplItemFn, Item, ItemFn, ItemImpl, LitStr, Pat,
    PathArguments, ReturnType, Type, Visibility, parse_macro_input,
};

/// Options written on an attribute: `key = expr` pairs and `resources(name = expr, ...)`.
#[derive(Default)]
struct Opts {
    name: Option<LitStr>,
    num_returns: Option<u32>,
    settings: Vec<(syn::Ident, Expr)>,
    resources: Vec<(String, Expr)>,
}

fn parse_opts(attr: TokenStream, allowed: &[&str]) -> syn::Result<Opts> {
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
    parser.parse(attr)?;
    Ok(o)
}

/// The last path segment of a type, with its generic arguments.
fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
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
struct Ret {
    /// The stored type (the `Ok` type of a `Result`).
    ok: Type,
    /// Whether the function returns a `Result` whose `Err` is an application error.
    fallible: bool,
}

fn analyze_return(out: &ReturnType) -> Ret {
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

fn vec_elem(ty: &Type) -> Option<&Type> {
    match last_segment(ty) {
        Some(seg) if seg.ident == "Vec" => first_type_arg(seg),
        _ => None,
    }
}

/// Owned parameters of a function (no receiver, no references), renamed `__a0, __a1, ...`.
struct Params {
    names: Vec<syn::Ident>,
    types: Vec<Type>,
    /// The user's own names, for the generated signatures.
    user_names: Vec<syn::Ident>,
}

fn params<'a>(inputs: impl Iterator<Item = &'a FnArg>) -> syn::Result<Params> {
    let mut p = Params {
        names: Vec::new(),
        types: Vec::new(),
        user_names: Vec::new(),
    };
    for (i, arg) in inputs.enumerate() {
        let FnArg::Typed(t) = arg else {
            return Err(syn::Error::new(arg.span(), "unexpected receiver"));
        };
        if let Type::Reference(r) = &*t.ty {
            return Err(syn::Error::new(
                r.span(),
                "arguments of remote functions and actor methods must be owned values (they may cross threads and nodes): take `String`, `Vec<T>`, ... instead of references",
            ));
        }
        if let Type::ImplTrait(r) = &*t.ty {
            return Err(syn::Error::new(
                r.span(),
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

impl Params {
    fn takes(&self) -> Ts {
        let (n, t) = (&self.names, &self.types);
        let idx = 0..n.len();
        let count = n.len();
        quote! {
            __args.expect_len(#count)?;
            #( let #n: #t = __args.take(#idx)?; )*
        }
    }

    fn signature(&self) -> Ts {
        let (n, t) = (&self.user_names, &self.types);
        quote! { #( #n: impl ::raya::IntoArg<#t> ),* }
    }

    fn arg_list(&self) -> Ts {
        let n = &self.user_names;
        quote! { ::std::vec![ #( ::raya::IntoArg::into_arg(#n) ),* ] }
    }
}

/// Marks a function as remote: `f::remote(args)` runs it as a task and returns an
/// `ObjectRef` to its result. See the `raya` crate documentation.
#[proc_macro_attribute]
pub fn remote(attr: TokenStream, item: TokenStream) -> TokenStream {
    let opts = match parse_opts(
        attr,
        &[
            "name",
            "num_cpus",
            "num_gpus",
            "memory",
            "max_retries",
            "retry_exceptions",
            "num_returns",
            "scheduling_strategy",
        ],
    ) {
        Ok(o) => o,
        Err(e) => return e.to_compile_error().into(),
    };
    let f = parse_macro_input!(item as ItemFn);
    match remote_fn(opts, f) {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn remote_fn(opts: Opts, f: ItemFn) -> syn::Result<Ts> {
    let sig = &f.sig;
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "remote functions cannot be generic: they are registered by name and every node must run the same code",
        ));
    }
    if let Some(FnArg::Receiver(r)) = sig.inputs.first() {
        return Err(syn::Error::new(
            r.span(),
            "#[raya::remote] is for free functions; use #[raya::actor] on impl blocks",
        ));
    }
    let ident = &sig.ident;
    let vis = &f.vis;
    let p = params(sig.inputs.iter())?;
    let ret = analyze_return(&sig.output);
    let n = opts.num_returns.unwrap_or(1);
    let is_async = sig.asyncness.is_some();

    let name = match &opts.name {
        Some(l) => quote! { #l },
        None => {
            quote! { ::core::concat!(::core::module_path!(), "::", ::core::stringify!(#ident)) }
        }
    };
    let call_args = &p.names;
    let call = if is_async {
        quote! { #ident(#(#call_args),*).await }
    } else {
        quote! { #ident(#(#call_args),*) }
    };
    let ok_ty = &ret.ok;
    let split_elem = if n == 1 {
        vec_elem(ok_ty).cloned()
    } else {
        None
    };
    let convert = if n == 1 {
        let value = if ret.fallible {
            quote! { __ret.map_err(::raya::__private::app_error)? }
        } else {
            quote! { __ret }
        };
        if split_elem.is_some() {
            quote! { ::raya::__private::ret_split(#value, __args_n) }
        } else {
            quote! { ::raya::__private::ret(#value) }
        }
    } else {
        let elems: Vec<Type> = match ok_ty {
            Type::Tuple(t) if t.elems.len() == n as usize => t.elems.iter().cloned().collect(),
            _ => {
                return Err(syn::Error::new(
                    sig.output.span(),
                    format!("num_returns = {n} needs the function to return a tuple of {n} values"),
                ));
            }
        };
        let xs: Vec<syn::Ident> = (0..elems.len())
            .map(|i| format_ident!("__x{}", i))
            .collect();
        let value = if ret.fallible {
            quote! { __ret.map_err(::raya::__private::app_error)? }
        } else {
            quote! { __ret }
        };
        quote! {
            let (#(#xs),*) = #value;
            Ok(::std::vec![ #( ::raya::__private::RayaValue::new(#xs) ),* ])
        }
    };
    let takes = p.takes();
    let invoke = if is_async {
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
    };
    let invoke_kind = if is_async {
        quote! { ::raya::__private::Invoke::Async(__invoke) }
    } else {
        quote! { ::raya::__private::Invoke::Sync(__invoke) }
    };
    let mut settings = opts.settings.clone();
    for (k, v) in &opts.resources {
        let k = LitStr::new(k, Span::call_site());
        settings.push((format_ident!("__resource"), syn::parse_quote!((#k, #v))));
    }
    let assigns = {
        let mut out = Ts::new();
        for (k, v) in &settings {
            let span = v.span();
            let ks = k.to_string();
            out.extend(match ks.as_str() {
                "num_cpus" | "num_gpus" | "memory" => quote_spanned! {span=> __o.#k = (#v) as f64; },
                "__resource" => quote_spanned! {span=> { let (__n, __a) = #v; __o.resources.push((__n.to_string(), __a as f64)); } },
                _ => quote_spanned! {span=> __o.#k = #v; },
            });
        }
        out
    };
    let sig_params = p.signature();
    let into_args = p.arg_list();
    let doc_remote = format!("Submits [`{ident}`](fn@{ident}) as a task with its default options.");
    let (ret_ty, submit) = if n == 1 {
        (
            quote! { ::raya::ObjectRef<#ok_ty> },
            quote! { ::raya::__private::submit_one(&__RAYA_FUNCTION, &self.0, #into_args) },
        )
    } else {
        let Type::Tuple(t) = ok_ty else {
            unreachable!("checked above")
        };
        let tys: Vec<&Type> = t.elems.iter().collect();
        let nexts = tys.iter().map(
            |_| quote! { ::raya::__private::typed(__r.next().expect("one reference per return")) },
        );
        (
            quote! { ( #( ::raya::ObjectRef<#tys> ),* ) },
            quote! {{
                let mut __r = ::raya::__private::submit_many(&__RAYA_FUNCTION, &self.0, #into_args, #n).into_iter();
                ( #( #nexts ),* )
            }},
        )
    };
    let user_names = &p.user_names;
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
    let split_free = if split.is_some() {
        Some(quote! {
            /// Submits the task with its default options, asking for `__num_returns` return values.
            pub fn remote_split(__num_returns: u32, #sig_params) -> ::std::vec::Vec<::raya::ObjectRef<<#ok_ty as ::core::iter::IntoIterator>::Item>> {
                Self::options().remote_split(__num_returns, #(#user_names),*)
            }
        })
    } else {
        None
    };
    let struct_doc = format!(
        "The remote form of [`{ident}`](fn@{ident}): `{ident}::remote(..)` runs it as a task; \
         `{ident}::options()` sets per-call options first."
    );
    Ok(quote! {
        #f

        #[doc = #struct_doc]
        #[allow(non_camel_case_types)]
        #vis struct #ident {}

        const _: () = {
            #invoke

            #[::raya::__private::linkme::distributed_slice(::raya::__private::REMOTE_FUNCTIONS)]
            #[linkme(crate = ::raya::__private::linkme)]
            static __RAYA_FUNCTION: ::raya::__private::FunctionEntry = ::raya::__private::FunctionEntry {
                name: #ident::NAME,
                num_returns: #n,
                invoke: #invoke_kind,
            };

            /// Per-call options: set them with `raya::TaskBuilder` methods, then call `remote`.
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
    })
}

/// Makes a type an actor. On the struct it implements `raya::Actor` (with default options given
/// on the attribute); on the `impl` block it registers the constructor `new` and turns every
/// method taking `&self` or `&mut self` into a message the actor's handle can send. On the
/// `impl` block, `handles(MessageType, ...)` lists the actix-native messages (types with a
/// `raya::Handler` impl) that other nodes may send it. See the `raya` crate documentation.
#[proc_macro_attribute]
pub fn actor(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = parse_macro_input!(item as Item);
    let out = match item {
        Item::Struct(s) => {
            let opts = match parse_opts(
                attr,
                &[
                    "name",
                    "namespace",
                    "detached",
                    "max_restarts",
                    "max_task_retries",
                    "max_concurrency",
                    "num_cpus",
                    "num_gpus",
                    "memory",
                ],
            ) {
                Ok(o) => o,
                Err(e) => return e.to_compile_error().into(),
            };
            actor_struct(opts, &s.ident, &s.generics).map(|ts| quote! { #s #ts })
        }
        Item::Enum(e) => {
            if !attr.is_empty() {
                return syn::Error::new(Span::call_site(), "options go on a struct actor")
                    .to_compile_error()
                    .into();
            }
            actor_struct(Opts::default(), &e.ident, &e.generics).map(|ts| quote! { #e #ts })
        }
        Item::Impl(i) => {
            let handles = if attr.is_empty() {
                Vec::new()
            } else {
                match parse_handles(attr) {
                    Ok(h) => h,
                    Err(e) => return e.to_compile_error().into(),
                }
            };
            actor_impl(i, handles)
        }
        other => Err(syn::Error::new(
            other.span(),
            "#[raya::actor] goes on a struct (or enum) and on its impl block",
        )),
    };
    match out {
        Ok(ts) => ts.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn actor_struct(opts: Opts, ident: &syn::Ident, generics: &syn::Generics) -> syn::Result<Ts> {
    if !generics.params.is_empty() {
        return Err(syn::Error::new(
            generics.span(),
            "actor types cannot be generic",
        ));
    }
    let mut assigns = Ts::new();
    for (k, v) in &opts.settings {
        let span = v.span();
        assigns.extend(match k.to_string().as_str() {
            "detached" => quote_spanned! {span=> __o.lifetime = ::raya::Lifetime::Detached; },
            "namespace" => quote_spanned! {span=> __o.namespace = ::core::option::Option::Some((#v).to_string()); },
            "num_cpus" | "num_gpus" | "memory" => quote_spanned! {span=> __o.#k = ::core::option::Option::Some((#v) as f64); },
            "max_restarts" | "max_task_retries" => quote_spanned! {span=> __o.#k = (#v) as i64; },
            "max_concurrency" => quote_spanned! {span=> __o.max_concurrency = ::core::option::Option::Some((#v) as u32); },
            other => return Err(syn::Error::new(k.span(), format!("unknown actor option `{other}`"))),
        });
    }
    if let Some(n) = &opts.name {
        assigns.extend(quote! { __o.name = ::core::option::Option::Some(#n.to_string()); });
    }
    for (k, v) in &opts.resources {
        assigns.extend(quote! { __o.resources.push((#k.to_string(), (#v) as f64)); });
    }
    Ok(quote! {
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

enum Receiver {
    Shared,
    Exclusive,
}

/// `handles(TypeA, TypeB)` on an actor's impl block: the actix-native message types the actor
/// handles, so that nodes can deliver them by name.
fn parse_handles(attr: TokenStream) -> syn::Result<Vec<syn::Path>> {
    let mut out = Vec::new();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("handles") {
            let content;
            syn::parenthesized!(content in meta.input);
            let list = content
                .parse_terminated(<syn::Path as syn::parse::Parse>::parse, syn::Token![,])?;
            out.extend(list);
            Ok(())
        } else {
            Err(meta.error(
                "on the impl block only `handles(MessageType, ...)` is allowed; put actor options on the struct",
            ))
        }
    });
    syn::parse::Parser::parse(parser, attr)?;
    Ok(out)
}

fn actor_impl(imp: ItemImpl, handles: Vec<syn::Path>) -> syn::Result<Ts> {
    if imp.trait_.is_some() {
        return Err(syn::Error::new(
            imp.span(),
            "#[raya::actor] goes on the inherent impl block (with `fn new`), not on a trait impl",
        ));
    }
    if !imp.generics.params.is_empty() {
        return Err(syn::Error::new(
            imp.generics.span(),
            "actor types cannot be generic",
        ));
    }
    let self_ty = &imp.self_ty;
    let Some(seg) = last_segment(self_ty) else {
        return Err(syn::Error::new(
            self_ty.span(),
            "expected the actor's type name",
        ));
    };
    let ty_name = seg.ident.clone();
    let mut ctor: Option<&ImplItemFn> = None;
    let mut methods: Vec<(&ImplItemFn, Receiver)> = Vec::new();
    for item in &imp.items {
        let ImplItem::Fn(m) = item else { continue };
        match m.sig.inputs.first() {
            Some(FnArg::Receiver(r)) => {
                if r.reference.is_none() {
                    return Err(syn::Error::new(
                        r.span(),
                        "actor methods take `&self` or `&mut self`: the actor keeps its state between calls",
                    ));
                }
                if !m.sig.generics.params.is_empty() {
                    return Err(syn::Error::new(
                        m.sig.generics.span(),
                        "actor methods cannot be generic",
                    ));
                }
                let kind = if r.mutability.is_some() {
                    Receiver::Exclusive
                } else {
                    Receiver::Shared
                };
                methods.push((m, kind));
            }
            _ if m.sig.ident == "new" => ctor = Some(m),
            _ => {}
        }
    }
    let Some(ctor) = ctor else {
        return Err(syn::Error::new(
            imp.span(),
            "an actor's impl block needs a constructor `fn new(..) -> Self`; it runs on the node hosting the actor (and again on restart)",
        ));
    };
    if ctor.sig.asyncness.is_some() {
        return Err(syn::Error::new(
            ctor.sig.span(),
            "the constructor cannot be async",
        ));
    }
    let cp = params(ctor.sig.inputs.iter())?;
    let ctor_ret = analyze_return(&ctor.sig.output);
    let ctor_call_args = &cp.names;
    let ctor_body = if ctor_ret.fallible {
        quote! { ::raya::__private::ctor_result(<#self_ty>::new(#(#ctor_call_args),*)) }
    } else {
        quote! { ::core::result::Result::Ok(<#self_ty>::new(#(#ctor_call_args),*)) }
    };
    let ctor_takes = cp.takes();
    let ctor_sig = cp.signature();
    let ctor_args = cp.arg_list();
    let has_async = methods.iter().any(|(m, _)| m.sig.asyncness.is_some());

    let mut handle_methods = Ts::new();
    let mut method_fns = Ts::new();
    let mut method_arms = Ts::new();
    for (m, recv) in &methods {
        let name = &m.sig.ident;
        let p = params(m.sig.inputs.iter().skip(1))?;
        let ret = analyze_return(&m.sig.output);
        let ok_ty = &ret.ok;
        let takes = p.takes();
        let call_args = &p.names;
        let value = if ret.fallible {
            quote! { ::raya::__private::ret_result(__ret) }
        } else {
            quote! { ::raya::__private::ret(__ret) }
        };
        let label = format!("{ty_name}::{name}");
        let kind = match (m.sig.asyncness.is_some(), recv) {
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
        };
        let sig_params = p.signature();
        let into_args = p.arg_list();
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

    Ok(quote! {
        #imp

        const _: () = {
            /// The methods an `ActorHandle` of this actor exposes.
            pub struct Methods(::raya::__private::HandleRef<#self_ty>);

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
                        if name == ::core::any::type_name::<#handles>() {
                            return ::core::option::Option::Some(
                                ::raya::__private::handler_method::<Self, #handles>(),
                            );
                        }
                    )*
                    match name {
                        #method_arms
                        _ => ::core::option::Option::None,
                    }
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
    })
}
