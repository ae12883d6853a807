//! The dependency rule of `lib.rs`, enforced. Every module file of the crate is parsed (`syn`),
//! test code (`#[cfg(test)]`) left out; each `use` and each path in the code (macro arguments
//! included) that names a module of the crate (`crate::…`, `super::…`, `self::…`) is an import.
//! The test fails when
//! - a top-level module imports what [`crate::DEPENDENCY_RULE`] does not allow it (an import
//!   upward, or sideways where the rule says no);
//! - the modules inside any one module import each other in a loop (as `rules/{check,eval}` and
//!   `db/migrate/{ops,snapshot}` did);
//! - the rule itself has a loop, or leaves a top-level module out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use proc_macro2::{TokenStream, TokenTree};
use syn::visit::Visit;

/// A module's path from the crate root: `["rules", "check"]`.
type ModPath = Vec<String>;

/// Every module file reachable from `src/lib.rs` through `mod` items that are not
/// `#[cfg(test)]`, with its module path and text.
fn crate_sources() -> Vec<(ModPath, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut sources = Vec::new();
    walk(&src.join("lib.rs"), Vec::new(), &mut sources);
    sources
}

fn walk(file: &Path, module: ModPath, sources: &mut Vec<(ModPath, String)>) {
    let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let syntax = syn::parse_file(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default();
    // `lib.rs` and `mod.rs` keep their children beside them; `a.rs` keeps them in `a/`.
    let dir: PathBuf = if stem == "lib" || stem == "mod" {
        file.parent().unwrap().to_path_buf()
    } else {
        file.with_extension("")
    };
    for item in &syntax.items {
        if let syn::Item::Mod(declared) = item
            && declared.content.is_none()
            && !is_test(&declared.attrs)
        {
            let name = declared.ident.to_string();
            let flat = dir.join(format!("{name}.rs"));
            let child = if flat.exists() {
                flat
            } else {
                dir.join(&name).join("mod.rs")
            };
            let mut path = module.clone();
            path.push(name);
            walk(&child, path, sources);
        }
    }
    sources.push((module, text));
}

fn is_test(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("cfg")
            && attr
                .parse_args::<syn::Meta>()
                .is_ok_and(|meta| meta.path().is_ident("test"))
    })
}

/// Collects the crate paths one file names, each resolved to an absolute path.
struct Imports {
    /// The module being visited (inline modules pushed on it).
    module: ModPath,
    found: Vec<(ModPath, Vec<String>)>,
}

impl Imports {
    fn add(&mut self, segments: &[String]) {
        let Some(first) = segments.first() else {
            return;
        };
        let mut base = match first.as_str() {
            "crate" => Vec::new(),
            "self" => self.module.clone(),
            "super" => self.module.clone(),
            _ => return,
        };
        let mut rest = &segments[1..];
        if first == "super" {
            base.pop();
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
        }
        base.extend(rest.iter().cloned());
        if !base.is_empty() {
            self.found.push((self.module.clone(), base));
        }
    }

    fn use_tree(&mut self, prefix: &mut Vec<String>, tree: &syn::UseTree) {
        match tree {
            syn::UseTree::Path(path) => {
                prefix.push(path.ident.to_string());
                self.use_tree(prefix, &path.tree);
                prefix.pop();
            }
            syn::UseTree::Name(name) if name.ident == "self" => self.add(&prefix.clone()),
            syn::UseTree::Name(name) => {
                let mut path = prefix.clone();
                path.push(name.ident.to_string());
                self.add(&path);
            }
            syn::UseTree::Rename(rename) => {
                let mut path = prefix.clone();
                path.push(rename.ident.to_string());
                self.add(&path);
            }
            syn::UseTree::Glob(_) => self.add(&prefix.clone()),
            syn::UseTree::Group(group) => {
                for tree in &group.items {
                    self.use_tree(prefix, tree);
                }
            }
        }
    }

    /// `crate :: a :: b` sequences in a macro's tokens.
    fn tokens(&mut self, tokens: TokenStream) {
        let flat: Vec<TokenTree> = tokens.into_iter().collect();
        let mut i = 0;
        while i < flat.len() {
            match &flat[i] {
                TokenTree::Group(group) => self.tokens(group.stream()),
                TokenTree::Ident(ident)
                    if ["crate", "super", "self"].contains(&&*ident.to_string()) =>
                {
                    let mut path = vec![ident.to_string()];
                    let mut j = i + 1;
                    while let (
                        Some(TokenTree::Punct(a)),
                        Some(TokenTree::Punct(b)),
                        Some(TokenTree::Ident(next)),
                    ) = (flat.get(j), flat.get(j + 1), flat.get(j + 2))
                    {
                        if a.as_char() != ':' || b.as_char() != ':' {
                            break;
                        }
                        path.push(next.to_string());
                        j += 3;
                    }
                    if path.len() > 1 {
                        self.add(&path);
                    }
                    i = j - 1;
                }
                _ => {}
            }
            i += 1;
        }
    }
}

fn item_attrs(item: &syn::Item) -> &[syn::Attribute] {
    use syn::Item;
    match item {
        Item::Const(i) => &i.attrs,
        Item::Enum(i) => &i.attrs,
        Item::Fn(i) => &i.attrs,
        Item::Impl(i) => &i.attrs,
        Item::Macro(i) => &i.attrs,
        Item::Mod(i) => &i.attrs,
        Item::Static(i) => &i.attrs,
        Item::Struct(i) => &i.attrs,
        Item::Trait(i) => &i.attrs,
        Item::Type(i) => &i.attrs,
        Item::Use(i) => &i.attrs,
        _ => &[],
    }
}

impl<'ast> Visit<'ast> for Imports {
    fn visit_item(&mut self, item: &'ast syn::Item) {
        if !is_test(item_attrs(item)) {
            syn::visit::visit_item(self, item);
        }
    }

    fn visit_impl_item_fn(&mut self, item: &'ast syn::ImplItemFn) {
        if !is_test(&item.attrs) {
            syn::visit::visit_impl_item_fn(self, item);
        }
    }

    fn visit_item_mod(&mut self, item: &'ast syn::ItemMod) {
        if let Some((_, items)) = &item.content {
            self.module.push(item.ident.to_string());
            for item in items {
                self.visit_item(item);
            }
            self.module.pop();
        }
    }

    /// `pub(crate)`, `pub(super)`: not imports.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}

    fn visit_item_use(&mut self, item: &'ast syn::ItemUse) {
        self.use_tree(&mut Vec::new(), &item.tree);
    }

    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        self.add(&segments);
        syn::visit::visit_path(self, path);
    }

    fn visit_macro(&mut self, mac: &'ast syn::Macro) {
        self.tokens(mac.tokens.clone());
        syn::visit::visit_macro(self, mac);
    }
}

/// Every way `sources` break `rule` (module → the paths it may import; `a::b` allows `a::b` and
/// what is inside it).
fn violations(sources: &[(ModPath, String)], rule: &[(&str, &[&str])]) -> Vec<String> {
    let modules: BTreeSet<ModPath> = sources.iter().map(|(m, _)| m.clone()).collect();
    let mut problems = Vec::new();
    let mut imports = Vec::new();
    for (module, text) in sources {
        let syntax = match syn::parse_file(text) {
            Ok(syntax) => syntax,
            Err(e) => {
                problems.push(format!("{}: {e}", module.join("::")));
                continue;
            }
        };
        let mut visitor = Imports {
            module: module.clone(),
            found: Vec::new(),
        };
        visitor.visit_file(&syntax);
        imports.extend(visitor.found);
    }

    let allowed: BTreeMap<&str, &[&str]> = rule.iter().copied().collect();
    for (module, _) in rule {
        if !modules.contains(&vec![module.to_string()]) {
            problems.push(format!("the rule names `{module}`, which is no module"));
        }
    }
    for module in modules.iter().filter(|m| m.len() == 1) {
        if !allowed.contains_key(module[0].as_str()) {
            problems.push(format!("`{}` is missing from the rule", module[0]));
        }
    }
    let edges = rule
        .iter()
        .map(|(m, to)| {
            (
                *m,
                to.iter()
                    .map(|t| t.split("::").next().unwrap_or(t))
                    .collect(),
            )
        })
        .collect();
    if let Some(cycle) = find_cycle(&edges) {
        problems.push(format!("the rule has a loop: {}", cycle.join(" → ")));
    }

    // Imports between modules of one parent, by parent.
    let mut inside: BTreeMap<ModPath, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for (from, path) in &imports {
        // The module the path names: its longest prefix that is a module.
        let target: ModPath = (0..=path.len())
            .rev()
            .map(|n| path[..n].to_vec())
            .find(|prefix| modules.contains(prefix))
            .unwrap_or_default();
        let Some(top) = from.first() else { continue };
        if target.is_empty() {
            if seen.insert((from.clone(), path.clone())) {
                problems.push(format!(
                    "{} names `crate::{}` through the crate root: name its module",
                    from.join("::"),
                    path.join("::")
                ));
            }
            continue;
        }
        if target[0] != *top {
            let ok = allowed.get(top.as_str()).is_some_and(|may| {
                may.iter().any(|entry| {
                    let entry: Vec<&str> = entry.split("::").collect();
                    entry.len() <= path.len() && entry.iter().zip(path).all(|(a, b)| a == b)
                })
            });
            if !ok && seen.insert((from.clone(), path.clone())) {
                problems.push(format!(
                    "{} imports `crate::{}`, which the rule does not allow `{top}`",
                    from.join("::"),
                    path.join("::")
                ));
            }
            continue;
        }
        let common = from.iter().zip(&target).take_while(|(a, b)| a == b).count();
        if from.len() > common && target.len() > common {
            inside
                .entry(from[..common].to_vec())
                .or_default()
                .entry(from[common].clone())
                .or_default()
                .insert(target[common].clone());
        }
    }
    for (parent, graph) in &inside {
        let edges = graph
            .iter()
            .map(|(m, to)| (m.as_str(), to.iter().map(String::as_str).collect()))
            .collect();
        if let Some(cycle) = find_cycle(&edges) {
            problems.push(format!(
                "modules of `{}` import each other in a loop: {}",
                parent.join("::"),
                cycle.join(" → ")
            ));
        }
    }
    problems
}

/// A loop in a graph, as the names along it (the first repeated at the end).
fn find_cycle<'a>(edges: &BTreeMap<&'a str, Vec<&'a str>>) -> Option<Vec<&'a str>> {
    fn visit<'a>(
        node: &'a str,
        edges: &BTreeMap<&'a str, Vec<&'a str>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<&'a str>> {
        if let Some(at) = path.iter().position(|n| *n == node) {
            let mut cycle = path[at..].to_vec();
            cycle.push(node);
            return Some(cycle);
        }
        if !done.insert(node) {
            return None;
        }
        path.push(node);
        for next in edges.get(node).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    edges
        .keys()
        .find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

#[test]
fn the_crate_keeps_its_dependency_rule() {
    let problems = violations(&crate_sources(), crate::DEPENDENCY_RULE);
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn violations_are_found() {
    fn module(path: &str, text: &str) -> (ModPath, String) {
        let path = if path.is_empty() {
            Vec::new()
        } else {
            path.split("::").map(str::to_string).collect()
        };
        (path, text.to_string())
    }
    let rule: &[(&str, &[&str])] = &[
        ("low", &[]),
        ("mid", &["low"]),
        ("top", &["mid", "low::open"]),
    ];
    let base = || {
        vec![
            module("", ""),
            module("low", ""),
            module("low::open", ""),
            module("low::closed", ""),
            module("mid", ""),
            module("mid::a", ""),
            module("mid::b", ""),
            module("top", ""),
        ]
    };
    /// Files (module, text) replacing the empty ones, and the problems expected.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: &[Case] = &[
        (&[], &[]),
        (&[("mid", "use crate::low::closed::X;")], &[]),
        (
            &[("low", "use crate::mid::Y;")],
            &["low imports `crate::mid::Y`, which the rule does not allow `low`"],
        ),
        (&[("top", "use crate::low::open::Z;")], &[]),
        (
            &[("top", "use crate::low::closed::Z;")],
            &["top imports `crate::low::closed::Z`, which the rule does not allow `top`"],
        ),
        (
            &[("low", "fn f() { let _ = crate::mid::g(); }")],
            &["low imports `crate::mid::g`, which the rule does not allow `low`"],
        ),
        (
            &[("low", "fn f() { println!(\"{}\", crate::mid::g()); }")],
            &["low imports `crate::mid::g`, which the rule does not allow `low`"],
        ),
        (
            &[("low", "#[cfg(test)]\nmod tests { use crate::mid::Y; }")],
            &[],
        ),
        (
            &[
                ("mid::a", "use super::b::X;"),
                ("mid::b", "use crate::mid::a::{self, Y};"),
            ],
            &["modules of `mid` import each other in a loop: a → b → a"],
        ),
        (
            &[
                ("mid::a", "use super::b::X;"),
                ("mid::b", "use super::Shared;"),
            ],
            &[],
        ),
        (&[("mid::a", "use super::super::low::X;")], &[]),
        (
            &[("low::open", "use super::super::top::X;")],
            &["low::open imports `crate::top::X`, which the rule does not allow `low`"],
        ),
    ];
    for (files, expected) in cases {
        let mut sources = base();
        for (path, text) in *files {
            let slot = sources
                .iter_mut()
                .find(|(m, _)| m.join("::") == *path)
                .unwrap();
            slot.1 = text.to_string();
        }
        assert_eq!(violations(&sources, rule), *expected, "{files:?}");
    }
    let looping: &[(&str, &[&str])] = &[("low", &["top"]), ("mid", &["low"]), ("top", &["mid"])];
    assert_eq!(
        violations(&base(), looping),
        ["the rule has a loop: low → top → mid → low"]
    );
    let missing: &[(&str, &[&str])] = &[("low", &[]), ("mid", &["low"])];
    assert_eq!(
        violations(&base(), missing),
        ["`top` is missing from the rule"]
    );
}
