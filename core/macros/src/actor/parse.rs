//! Reading `#[raya::actor]` on a type (its default options) and on its `impl` block (the
//! constructor, the methods and the actix-native messages it `handles`), with the checks whose
//! messages say what to change.

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use syn::{FnArg, ImplItem, ImplItemFn, Item, ItemImpl};

use crate::options::{self, Opts};
use crate::types::{Params, Ret, last_segment};

/// The options `#[raya::actor]` takes on a type.
const ALLOWED: &[&str] = &[
    "name",
    "namespace",
    "detached",
    "max_restarts",
    "max_task_retries",
    "max_concurrency",
    "num_cpus",
    "num_gpus",
    "memory",
];

/// `#[raya::actor]` on a struct or an enum.
pub(crate) struct ActorType {
    pub(crate) item: Item,
    pub(crate) ident: syn::Ident,
    pub(crate) opts: Opts,
}

impl ActorType {
    /// Reads a struct (with options) or an enum (without).
    pub(crate) fn parse(attr: TokenStream, item: Item) -> syn::Result<ActorType> {
        let (ident, generics, opts) = match &item {
            Item::Struct(s) => (s.ident.clone(), &s.generics, options::parse(attr, ALLOWED)?),
            Item::Enum(e) => {
                if !attr.is_empty() {
                    return Err(syn::Error::new(
                        Span::call_site(),
                        "options go on a struct actor",
                    ));
                }
                (e.ident.clone(), &e.generics, Opts::default())
            }
            other => {
                return Err(syn::Error::new_spanned(
                    other,
                    "#[raya::actor] goes on a struct (or enum) and on its impl block",
                ));
            }
        };
        if !generics.params.is_empty() {
            return Err(syn::Error::new_spanned(
                generics,
                "actor types cannot be generic",
            ));
        }
        Ok(ActorType { item, ident, opts })
    }
}

/// How a method takes its actor.
#[derive(Clone, Copy)]
pub(crate) enum Receiver {
    /// `&self`: may run beside other `&self` calls.
    Shared,
    /// `&mut self`: runs alone.
    Exclusive,
}

/// One method of the actor.
pub(crate) struct MethodDef {
    pub(crate) ident: syn::Ident,
    pub(crate) vis: syn::Visibility,
    pub(crate) receiver: Receiver,
    pub(crate) is_async: bool,
    pub(crate) params: Params,
    pub(crate) ret: Ret,
}

/// An actix-native message the actor handles and other nodes may send it.
pub(crate) struct HandledMessage {
    pub(crate) path: syn::Path,
    /// Its wire name's last part: the message type's own name.
    pub(crate) ident: syn::Ident,
}

/// `#[raya::actor]` on the inherent `impl` block.
pub(crate) struct ActorImpl {
    pub(crate) item: ItemImpl,
    /// The type's name, as the method labels use it (`Type::method`).
    pub(crate) ty_name: syn::Ident,
    pub(crate) ctor_params: Params,
    pub(crate) ctor_ret: Ret,
    pub(crate) methods: Vec<MethodDef>,
    pub(crate) handles: Vec<HandledMessage>,
}

/// `handles(TypeA, TypeB)`: the actix-native message types the actor handles, so that nodes can
/// deliver them by name.
fn parse_handles(attr: TokenStream) -> syn::Result<Vec<syn::Path>> {
    let mut out = Vec::new();
    if attr.is_empty() {
        return Ok(out);
    }
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
    syn::parse::Parser::parse2(parser, attr)?;
    Ok(out)
}

impl ActorImpl {
    pub(crate) fn parse(attr: TokenStream, item: ItemImpl) -> syn::Result<ActorImpl> {
        let handles = parse_handles(attr)?;
        if let Some((_, path, _)) = &item.trait_ {
            return Err(syn::Error::new_spanned(
                path,
                "#[raya::actor] goes on the inherent impl block (with `fn new`), not on a trait impl",
            ));
        }
        if !item.generics.params.is_empty() {
            return Err(syn::Error::new_spanned(
                &item.generics,
                "actor types cannot be generic",
            ));
        }
        let Some(seg) = last_segment(&item.self_ty) else {
            return Err(syn::Error::new_spanned(
                &item.self_ty,
                "expected the actor's type name",
            ));
        };
        let ty_name = seg.ident.clone();
        let mut ctor: Option<&ImplItemFn> = None;
        let mut methods = Vec::new();
        for it in &item.items {
            let ImplItem::Fn(m) = it else { continue };
            match m.sig.inputs.first() {
                Some(FnArg::Receiver(r)) => {
                    if r.reference.is_none() {
                        return Err(syn::Error::new_spanned(
                            r,
                            "actor methods take `&self` or `&mut self`: the actor keeps its state between calls",
                        ));
                    }
                    if !m.sig.generics.params.is_empty() {
                        return Err(syn::Error::new_spanned(
                            &m.sig.generics,
                            "actor methods cannot be generic",
                        ));
                    }
                    methods.push(MethodDef {
                        ident: m.sig.ident.clone(),
                        vis: m.vis.clone(),
                        receiver: if r.mutability.is_some() {
                            Receiver::Exclusive
                        } else {
                            Receiver::Shared
                        },
                        is_async: m.sig.asyncness.is_some(),
                        params: Params::of(m.sig.inputs.iter().skip(1))?,
                        ret: Ret::of(&m.sig.output),
                    });
                }
                _ if m.sig.ident == "new" => ctor = Some(m),
                _ => {}
            }
        }
        let Some(ctor) = ctor else {
            return Err(syn::Error::new_spanned(
                &item.self_ty,
                "an actor's impl block needs a constructor `fn new(..) -> Self`; it runs on the node hosting the actor (and again on restart)",
            ));
        };
        if let Some(asyncness) = &ctor.sig.asyncness {
            return Err(syn::Error::new_spanned(
                asyncness,
                "the constructor cannot be async",
            ));
        }
        let ctor_params = Params::of(ctor.sig.inputs.iter())?;
        let ctor_ret = Ret::of(&ctor.sig.output);
        let handles = Self::check_handles(handles, &methods)?;
        Ok(ActorImpl {
            ty_name,
            ctor_params,
            ctor_ret,
            methods,
            handles,
            item,
        })
    }

    /// Each handled message is named `Type::Message` on the wire: two messages with one name,
    /// or a message named like a method, would be ambiguous.
    fn check_handles(
        paths: Vec<syn::Path>,
        methods: &[MethodDef],
    ) -> syn::Result<Vec<HandledMessage>> {
        let mut seen: HashSet<String> = methods.iter().map(|m| m.ident.to_string()).collect();
        let mut out = Vec::new();
        for path in paths {
            let Some(last) = path.segments.last() else {
                return Err(syn::Error::new_spanned(&path, "expected a message type"));
            };
            let ident = last.ident.clone();
            if !seen.insert(ident.to_string()) {
                return Err(syn::Error::new_spanned(
                    &path,
                    format!(
                        "`{ident}` names two of this actor's messages or methods: messages are delivered by `Type::{ident}`, so give one another name"
                    ),
                ));
            }
            out.push(HandledMessage { path, ident });
        }
        Ok(out)
    }

    pub(crate) fn has_async(&self) -> bool {
        self.methods.iter().any(|m| m.is_async)
    }
}
