//! The tokens `#[worker]` adds next to the user's fn; tokens only, every
//! decision was made before.
//!
//! Two pieces:
//! - the hidden *reference item*, a same-named empty struct implementing
//!   `WorkerRef`, so that a path in another worker's `depends_on`/`blocks`
//!   is resolved (and its typos reported) by the compiler;
//! - the *registration*: a type-erased run fn, the state types the worker
//!   needs, and one `inventory::submit!` of a const `WorkerDef`, all inside
//!   `const _: () = { ... };` so nothing leaks into the user's namespace.
//!
//! Every path is fully qualified through the `crate` path (default
//! `::orchestrator`). Checks the compiler performs are `quote_spanned!` at the
//! user's tokens, so their errors land there.

use std::time::Duration;

use proc_macro2::{Ident, Span, TokenStream};
use quote::{ToTokens, format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Attribute, LitStr, Path, Visibility};

use crate::args::{Args, Given};
use crate::signature::Shape;
use crate::values::{Choice, WorkerName};

/// What both pieces need to know about the worker.
pub(crate) struct Worker<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) vis: &'a Visibility,
    pub(crate) cfgs: Vec<&'a Attribute>,
    /// The worker's name in the graph.
    pub(crate) name: LitStr,
    /// The path orchestrator is reached through.
    pub(crate) krate: Path,
}

/// The hidden reference item: `fetch_data` the type, next to `fetch_data`
/// the fn (Rocket's trick for its route fns).
///
/// A struct with braces lives only in the type namespace, so it coexists with
/// the fn of the same name, and a path written in `depends_on` reaches it
/// through the same `use`s, visibility and re-exports as the fn itself.
/// It is emitted even when the attribute has errors, so that workers which
/// refer to this one do not report a second, misleading error.
pub(crate) fn reference_item(worker: &Worker) -> TokenStream {
    let Worker { ident, vis, cfgs, name, krate } = worker;
    // Spanned at the fn name, so that rustc's "similarly named struct defined
    // here" and "the trait is implemented for" notes point at it. (No local
    // names here, so the fn name's own hygiene is harmless.)
    quote_spanned! {ident.span()=>
        #(#cfgs)*
        #[doc(hidden)]
        #[allow(non_camel_case_types, dead_code, missing_docs, missing_debug_implementations, unreachable_pub)]
        #vis struct #ident {}

        #(#cfgs)*
        impl #krate::__private::WorkerRef for #ident {
            const NAME: &'static str = #name;
        }
    }
}

/// The run fn, the state types and the `WorkerDef` submission.
pub(crate) fn registration(worker: &Worker, shape: &Shape, args: &Args) -> TokenStream {
    let Worker { ident, cfgs, name, krate, .. } = worker;
    let private = quote!(#krate::__private);

    // Each argument is checked against `WorkerArg` with paths spanned at the
    // user's type, so an unsupported type gets the trait's on_unimplemented
    // message there. One unmet bound must give one error, which takes some
    // care (see tests/ui/fail/state_not_thread_safe.rs):
    // - the run fn names `from_run`: a trait error in its body also keeps
    //   rustc from adding "future cannot be sent" for the same type;
    // - the state list names `state_type` in a const that also names
    //   `from_run` at the same span: within one body rustc reports a
    //   predicate once per span, and the `from_run` error is identical to the
    //   run fn's, so it is deduplicated too. (A lone `state_type` would
    //   report a missing `Send` a second time, "required by `state_type`".)
    let arg_consts: Vec<Ident> = (0..shape.args.len()).map(|i| format_ident!("__ORCHESTRATOR_ARG{}", i)).collect();
    let arg_vars: Vec<Ident> = (0..shape.args.len()).map(|i| format_ident!("__arg{}", i)).collect();
    let define_args = shape.args.iter().zip(&arg_consts).map(|(ty, name)| {
        let fns = quote_spanned! {ty.span()=>
            (<#ty as #private::WorkerArg>::from_run, <#ty as #private::WorkerArg>::state_type)
        };
        quote! {
            const #name: (
                fn(&#private::RunInput) -> #ty,
                fn() -> ::core::option::Option<#private::StateType>,
            ) = #fns;
        }
    });
    let build_args = shape.args.iter().zip(&arg_vars).map(|(ty, var)| {
        let from_run = quote_spanned!(ty.span()=> <#ty as #private::WorkerArg>::from_run);
        quote!(let #var = #from_run(&__input);)
    });
    let input = if shape.args.is_empty() { quote!(_) } else { quote!(__input) };
    let into_result = match shape.output {
        Some(ty) => quote_spanned!(ty.span()=> <#ty as #private::WorkerOutput>::into_result),
        None => quote!(<() as #private::WorkerOutput>::into_result),
    };
    // The unsizing to `dyn Future + Send` happens at the tail expression,
    // spanned at the fn name: a future that is not `Send` is reported there
    // rather than at the whole attribute.
    let boxed = quote_spanned!(at_fn_name(ident)=> __boxed);

    let state_types = arg_consts.iter().map(|name| quote!(#name.1));
    // With the fn name's own span (not `at_fn_name`): `line!()` reports the
    // line of the outermost expansion its span belongs to, which for the
    // macro's own spans would be the attribute's line, not the fn's.
    let file = quote_spanned!(ident.span()=> ::core::file!());
    let line = quote_spanned!(ident.span()=> ::core::line!());
    let fields = def_fields(args, &private);

    // Every name the expansion introduces starts with `__`: the user's fn is
    // called by its bare name from inside, where a local or an item of the
    // same name (a worker called `run` or `input`) would shadow it.
    quote! {
        #(#cfgs)*
        const _: () = {
            #(#define_args)*

            fn __orchestrator_run(#input: #private::RunInput) -> #private::BoxRunFuture {
                #(#build_args)*
                let __future = #ident(#(#arg_vars),*);
                // `Box` through `::std` rather than the `crate` path: with a wrong
                // `crate` path, every use of it fails alike and rustc reports
                // the failure once, but for `Box` it adds a distinct
                // "consider importing" help, which would make a second error.
                let __boxed = ::std::boxed::Box::pin(async move { #into_result(__future.await) });
                #boxed
            }

            #private::inventory::submit! {
                #private::WorkerDef {
                    #fields
                    ..#private::WorkerDef::new(#name, #file, #line, __orchestrator_run, &[#(#state_types),*])
                }
            }
        };
    }
}

/// A span shown at the fn name but resolving names like the macro's own
/// tokens. The fn name itself may carry a `macro_rules!` hygiene (a worker
/// declared by a user's macro), under which the generated locals would be
/// invisible.
fn at_fn_name(ident: &Ident) -> Span {
    Span::call_site().located_at(ident.span())
}

/// The `WorkerDef` fields of the keys the attribute gives; the others keep
/// `WorkerDef::new`'s "not given", so defaults stay decided by the runtime.
fn def_fields(args: &Args, private: &TokenStream) -> TokenStream {
    let some = |value: TokenStream| quote!(::core::option::Option::Some(#value));
    let duration = |d: Duration| {
        let (secs, nanos) = (d.as_secs(), d.subsec_nanos());
        quote!(#private::Duration::new(#secs, #nanos))
    };
    let names = |list: &Given<Vec<WorkerName>>| {
        let names = list.value.iter().map(|entry| worker_name(entry, private));
        quote!(&[#(#names),*])
    };

    let mut fields = TokenStream::new();
    let mut field = |name: &str, value: Option<TokenStream>| {
        if let Some(value) = value {
            let name = Ident::new(name, Span::call_site());
            fields.extend(quote!(#name: #value,));
        }
    };

    // check.rs made sure there is at most one.
    let schedule = match (&args.interval, &args.delay, &args.cron) {
        (Some(interval), _, _) => Some((quote!(Interval), duration(interval.value))),
        (None, Some(delay), _) => Some((quote!(Delay), duration(delay.value))),
        (None, None, Some(cron)) => Some((quote!(Cron), cron.value.to_token_stream())),
        (None, None, None) => None,
    };
    let schedule = schedule.map(|(kind, value)| some(quote!(#private::ScheduleDef::#kind(#value))));
    field("schedule", schedule);
    field("timezone", args.timezone.as_ref().map(|g| some(g.value.to_token_stream())));
    field("mode", args.mode.as_ref().map(|g| some(choice(g.value, private))));
    field("restart_delay", args.restart_delay.as_ref().map(|g| some(duration(g.value))));
    field("timeout", args.timeout.as_ref().map(|g| some(duration(g.value))));
    field("retries", args.retries.as_ref().map(|g| some(g.value.to_token_stream())));
    field("backoff", args.backoff.as_ref().map(|g| some(duration(g.value))));
    field("max_backoff", args.max_backoff.as_ref().map(|g| some(duration(g.value))));
    field("priority", args.priority.as_ref().map(|g| some(choice(g.value, private))));
    field("depends_on", args.depends_on.as_ref().map(names));
    field("blocks", args.blocks.as_ref().map(names));
    field("max_consecutive_failures", args.max_consecutive_failures.as_ref().map(|g| some(g.value.to_token_stream())));
    field("initial_delay", args.initial_delay.as_ref().map(|g| some(duration(g.value))));
    field("jitter", args.jitter.as_ref().map(|g| some(duration(g.value))));
    field("misfire", args.misfire.as_ref().map(|g| some(choice(g.value, private))));
    field("enabled", args.enabled.as_ref().map(|g| some(g.value.to_token_stream())));
    field("scope", args.scope.as_ref().map(|g| some(choice(g.value, private))));
    fields
}

/// `priority = High` as `<crate>::__private::Priority::High`.
fn choice<T: Choice>(value: T, private: &TokenStream) -> TokenStream {
    let ty = Ident::new(T::TYPE, Span::call_site());
    let variant = Ident::new(value.name(), Span::call_site());
    quote!(#private::#ty::#variant)
}

/// One `depends_on`/`blocks` entry as a `&'static str` constant.
///
/// A path becomes `<path as WorkerRef>::NAME` rather than, say, a call to a
/// generic `const fn name_of::<T: WorkerRef>()`: naming the path as the
/// self type of a qualified path makes rustc resolve it in the *type*
/// namespace, where the reference item lives, and report a typo as "cannot
/// find type `fetch_dta`" with its own similar-name suggestion, at the typo.
/// A path that resolves to something that is not a worker gets `WorkerRef`'s
/// on_unimplemented message, again at the path. The `<` is spanned at the
/// path's first token and `NAME` at its last, so the error underlines the
/// whole path even though proc-macro spans cannot be joined on stable.
fn worker_name(entry: &WorkerName, private: &TokenStream) -> TokenStream {
    match entry {
        WorkerName::Name(name) => name.to_token_stream(),
        WorkerName::Path(path) => {
            let mut tokens = path.to_token_stream().into_iter();
            let first = tokens.next().map_or_else(Span::call_site, |t| t.span());
            let last = tokens.last().map_or(first, |t| t.span());
            let open = quote_spanned!(first=> <);
            let trait_ref = quote_spanned!(first=> as #private::WorkerRef>);
            let name = quote_spanned!(last=> ::NAME);
            quote!(#open #path #trait_ref #name)
        }
    }
}
