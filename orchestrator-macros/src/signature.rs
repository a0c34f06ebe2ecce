//! Which fn shapes can be workers: a free, safe, non-const `async fn` without
//! generics, `self`, variadics or an ABI, whose argument and return types are
//! named.
//!
//! Whether those types are *supported* (`Context`, `State<T>`; `()`,
//! `Result<(), E: Display>`) is deliberately not judged here: the generated
//! code asks the compiler through the `WorkerArg` and `WorkerOutput` traits,
//! whose `on_unimplemented` messages land on the user's type. That covers
//! type aliases, re-exports and renamed imports, which no token inspection
//! could.

use proc_macro2::{TokenStream, TokenTree};
use quote::ToTokens;
use syn::parse::{Parse, ParseStream};
use syn::{Attribute, FnArg, ReturnType, Safety, Signature, Type, Visibility};

use crate::diag::Errors;

/// The annotated fn, read up to its body. The body stays unparsed tokens, so
/// that a fn whose body does not parse yet (while the user is typing) still
/// gets its signature checked and its hidden reference item.
pub(crate) struct WorkerFn {
    pub(crate) attrs: Vec<Attribute>,
    pub(crate) vis: Visibility,
    pub(crate) sig: Signature,
}

impl Parse for WorkerFn {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let attrs = input.call(Attribute::parse_outer)?;
        let vis = input.parse()?;
        let sig = input.parse()?;
        let _body: TokenStream = input.parse()?;
        Ok(WorkerFn { attrs, vis, sig })
    }
}

impl WorkerFn {
    /// The fn's `#[cfg(...)]` attributes: whatever the macro adds must exist
    /// exactly when the fn does. (`cfg_attr` is not copied: it may carry
    /// attributes that only make sense on a fn.)
    pub(crate) fn cfg_attrs(&self) -> Vec<&Attribute> {
        self.attrs.iter().filter(|a| a.path().is_ident("cfg")).collect()
    }
}

/// What codegen needs from an accepted signature.
pub(crate) struct Shape<'a> {
    /// Each argument's type, in order; patterns do not matter.
    pub(crate) args: Vec<&'a Type>,
    /// The declared return type; `None` for an implicit `()`.
    pub(crate) output: Option<&'a Type>,
}

pub(crate) fn check<'a>(sig: &'a Signature, errors: &mut Errors) -> Shape<'a> {
    let (ident, fn_token) = (&sig.ident, &sig.fn_token);
    match (&sig.constness, &sig.asyncness) {
        // rustc itself refuses `const async fn`, with a clear message: a
        // second error from here would only repeat it.
        (Some(_), Some(_)) | (None, Some(_)) => {}
        (Some(constness), None) => errors.spanned(
            quote::quote!(#constness #fn_token),
            format!("a worker must be an `async fn`, not a `const fn`: write `async fn {ident}`"),
        ),
        (None, None) => errors.spanned(
            sig.fn_token,
            format!("a worker must be an `async fn`: write `async fn {ident}` (the orchestrator awaits it)"),
        ),
    }
    if let Safety::Unsafe(unsafety) = &sig.safety {
        errors.spanned(
            unsafety,
            "a worker cannot be an `unsafe fn`: the orchestrator calls it with no safety contract to uphold; \
             remove `unsafe` and use `unsafe` blocks inside",
        );
    }
    if let Some(abi) = &sig.abi {
        errors.spanned(abi, "a worker cannot have an `extern` ABI: remove it (the orchestrator calls it as Rust)");
    }
    if !sig.generics.params.is_empty() {
        errors.spanned(
            &sig.generics,
            "a worker cannot be generic: the orchestrator calls it without type, lifetime or const arguments \
             (for shared values, take `State<T>` with a concrete `T`)",
        );
    } else if let Some(where_clause) = &sig.generics.where_clause {
        errors.spanned(where_clause, "a worker cannot have a `where` clause: remove it");
    }
    if let Some(variadic) = &sig.variadic {
        errors.spanned(variadic, "a worker cannot be variadic: remove `...`");
    }

    let mut args = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(receiver) => errors.spanned(
                receiver,
                "a worker is a free fn and cannot take `self`: move it out of the `impl` block, \
                 and hand it shared values as `State<T>`",
            ),
            FnArg::Typed(arg) if mentions_impl(&arg.ty) => errors.spanned(
                &arg.ty,
                "a worker argument cannot be `impl Trait`: take `orchestrator::Context` or `orchestrator::State<T>`",
            ),
            FnArg::Typed(arg) => args.push(&*arg.ty),
        }
    }

    let output = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, ty) if mentions_impl(ty) => {
            errors.spanned(
                ty,
                "a worker cannot return `impl Trait`: return `()` or `Result<(), E>` with a named `E` \
                 (for example `anyhow::Result<()>`)",
            );
            None
        }
        ReturnType::Type(_, ty) => Some(&**ty),
    };
    Shape { args, output }
}

/// Whether a type has an `impl Trait` anywhere in it, which cannot be named
/// in the generated `<Type as Trait>` checks.
fn mentions_impl(ty: &Type) -> bool {
    fn walk(tokens: TokenStream) -> bool {
        tokens.into_iter().any(|tree| match tree {
            TokenTree::Ident(ident) => ident == "impl",
            TokenTree::Group(group) => walk(group.stream()),
            _ => false,
        })
    }
    walk(ty.to_token_stream())
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors_of(tokens: TokenStream) -> Vec<String> {
        let worker: WorkerFn = syn::parse2(tokens).expect("test input is a fn");
        let mut errors = Errors::default();
        check(&worker.sig, &mut errors);
        errors.combined().into_iter().flat_map(|e| e.into_iter()).map(|e| e.to_string()).collect()
    }

    #[test]
    fn accepted_shapes_pass() {
        assert!(
            errors_of(quote!(
                async fn f() {}
            ))
            .is_empty()
        );
        assert!(
            errors_of(quote!(
                pub async fn f(ctx: Context, State(db): State<Db>) -> anyhow::Result<()> {}
            ))
            .is_empty()
        );
        assert!(
            errors_of(quote!(
                #[cfg(test)]
                pub(crate) async fn f(mut ctx: Context) -> () {}
            ))
            .is_empty()
        );
    }

    #[test]
    fn every_bad_modifier_is_reported() {
        let errors = errors_of(quote!(
            const unsafe extern "C" fn f<T>(self, args: ...) {}
        ));
        assert_eq!(errors.len(), 6, "{errors:#?}");
        assert!(errors[0].contains("must be an `async fn`, not a `const fn`: write `async fn f`"));
        assert!(errors[1].contains("`unsafe fn`"));
        assert!(errors[2].contains("`extern` ABI"));
        assert!(errors[3].contains("cannot be generic"));
        assert!(errors[4].contains("variadic"));
        assert!(errors[5].contains("cannot take `self`"));
        assert!(
            errors_of(quote!(
                fn f() {}
            ))[0]
                .contains("must be an `async fn`: write `async fn f`")
        );
        // rustc reports `const async fn` itself.
        assert!(
            errors_of(quote!(
                const async fn f() {}
            ))
            .is_empty()
        );
    }

    #[test]
    fn impl_trait_cannot_be_named() {
        let errors = errors_of(quote!(
            async fn f(x: impl Send) -> Result<(), impl Display> {}
        ));
        assert_eq!(errors.len(), 2, "{errors:#?}");
        assert!(errors[0].contains("argument cannot be `impl Trait`"));
        assert!(errors[1].contains("cannot return `impl Trait`"));
    }

    #[test]
    fn where_clause_alone_is_reported() {
        let errors = errors_of(quote!(
            async fn f()
            where
                String: Clone,
            {
            }
        ));
        assert_eq!(errors, ["a worker cannot have a `where` clause: remove it"]);
    }

    #[test]
    fn only_cfg_attributes_are_copied() {
        let worker: WorkerFn = syn::parse2(quote!(
            #[doc = "x"]
            #[cfg(unix)]
            #[cfg_attr(test, allow(dead_code))]
            async fn f() {}
        ))
        .expect("a fn");
        assert_eq!(worker.cfg_attrs().len(), 1);
    }
}
