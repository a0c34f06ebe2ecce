//! The driver of one `#[worker]` expansion: read the fn, read the arguments,
//! check, generate.
//!
//! Whatever goes wrong, the output starts with the user's fn exactly as
//! written, so that IDEs keep resolving and completing inside it while the
//! attribute has errors (tokio-macros' `entry.rs` does the same). The errors
//! follow as `compile_error!`s at the offending tokens, all of them at once.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use syn::LitStr;
use syn::ext::IdentExt;

use crate::args::Args;
use crate::check;
use crate::codegen::{self, Worker};
use crate::diag::Errors;
use crate::signature::{self, WorkerFn};

pub(crate) fn worker(args: TokenStream, item: TokenStream) -> TokenStream {
    let function: WorkerFn = match syn::parse2(item.clone()) {
        Ok(function) => function,
        Err(error) => return not_a_fn(item, error),
    };
    let mut errors = Errors::default();
    // Attribute errors first, then the fn's: the order they appear in the source.
    let args = Args::parse(args, &mut errors);
    check::check(&args, &function.sig.ident, &mut errors);
    let shape = signature::check(&function.sig, &mut errors);

    let ident = &function.sig.ident;
    let worker = Worker {
        ident,
        vis: &function.vis,
        cfgs: function.cfg_attrs(),
        name: match &args.name {
            Some(name) => name.value.clone(),
            None => LitStr::new(&ident.unraw().to_string(), ident.span()),
        },
        krate: match &args.krate {
            Some(krate) => krate.value.clone(),
            None => syn::parse_quote!(::orchestrator),
        },
    };
    // A fn with `self` sits in an `impl` or a trait, where a struct cannot
    // go: adding one would bury the real error under syntax errors.
    let reference = match function.sig.receiver() {
        None => codegen::reference_item(&worker),
        Some(_) => TokenStream::new(),
    };
    if errors.is_empty() {
        let registration = codegen::registration(&worker, &shape, &args);
        quote!(#item #reference #registration)
    } else {
        let errors = errors.to_compile_errors();
        quote!(#item #reference #errors)
    }
}

/// The item is not a fn (or its signature does not parse): keep it, and say
/// where the attribute belongs. When the item is a fn with a syntax error,
/// syn's error is the precise one.
fn not_a_fn(item: TokenStream, error: syn::Error) -> TokenStream {
    let has_fn = item.clone().into_iter().any(|tree| matches!(&tree, TokenTree::Ident(i) if i == "fn"));
    let error = if has_fn {
        error
    } else {
        let span = item.clone().into_iter().next().map_or_else(Span::call_site, |tree| tree.span());
        syn::Error::new(
            span,
            "#[worker] goes on an `async fn`: `#[worker(interval = \"60s\")] async fn name() { ... }`",
        )
    };
    let error = error.to_compile_error();
    quote!(#item #error)
}
