//! `expand` in the OpenAPI document (SPEC §10): the `CExpand` schema a document's `expand`
//! holds, and the `expand` query parameter of the list and get routes.
//!
//! The parameter's pattern is exact for the paths every caller may expand (relation fields and
//! back-relations whose field is neither hidden nor guarded by a field `read` rule), so a
//! generated value is one the server takes; the server also takes paths through guarded fields
//! from callers who may always read them, which the description says.

use serde_json::{Value as Json, json};

use super::schema_ref;
use crate::records::{MAX_BACK_RELATED, MAX_EXPAND_DEPTH, MAX_EXPAND_PATHS};
use crate::schema::{Collection, Field, Schema};

/// Longest pattern spelled out path by path; a schema with more relations than that gets a
/// pattern of names instead (a value it allows may then name no relation: 400).
const MAX_PATTERN: usize = 8 * 1024;

/// A name `expand` takes from a document of one collection.
struct Name<'s> {
    name: String,
    target: &'s Collection,
    /// An array of documents (a list, a back-relation) rather than one: at most this many.
    many: Option<usize>,
    /// Whether every caller may name it (no field `read` rule guards it).
    open: bool,
}

/// Every name `expand` takes from a document of `collection`, in declaration order: its
/// relation fields, then back-relations (`<collection>_via_<field>`).
fn names<'s>(schema: &'s Schema, collection: &'s Collection) -> Vec<Name<'s>> {
    let shown = |field: &Field| !field.hidden;
    let open = |field: &Field| field.access.read.is_none();
    let mut names = Vec::new();
    for field in collection.fields.iter().filter(|f| shown(f)) {
        if let Some(crate::schema::Step::Forward { to, .. }) = schema.step(collection, &field.name)
        {
            names.push(Name {
                name: field.name.clone(),
                target: to,
                many: field.kind.max_items(),
                open: open(field),
            });
        }
    }
    for source in &schema.collections {
        for field in source.fields.iter().filter(|f| shown(f)) {
            let name = format!("{}_via_{}", source.slug, field.name);
            if let Some(crate::schema::Step::Back { .. }) = schema.step(collection, &name) {
                names.push(Name {
                    name,
                    target: source,
                    many: Some(MAX_BACK_RELATED as usize),
                    open: open(field),
                });
            }
        }
    }
    names
}

/// `CExpand`: what `doc.expand` may hold. Every property is optional: it is there when asked
/// for, and a related document the caller may not read is absent (an array leaves it out).
pub fn component(schema: &Schema, collection: &Collection) -> Json {
    let mut properties = serde_json::Map::new();
    for name in names(schema, collection) {
        let document = schema_ref(&name.target.slug);
        let value = match name.many {
            Some(most) => json!({"type": "array", "items": document, "maxItems": most}),
            None => document,
        };
        properties.insert(name.name, value);
    }
    json!({
        "type": "object",
        "title": format!("{}: expanded relations", collection.label),
        "description": "The related documents `expand` asked for, each as its own collection's route shows it to the caller (nested paths in its own `expand`). One the caller may not read is absent.",
        "properties": properties,
        "additionalProperties": false,
    })
}

/// The `expand` query parameter, for a collection with something every caller may expand.
pub fn parameter(schema: &Schema, collection: &Collection) -> Option<Json> {
    let mut budget = MAX_PATTERN;
    let path = paths(schema, collection, MAX_EXPAND_DEPTH, &mut budget)?;
    let path = if budget == 0 {
        let name = "[A-Za-z][A-Za-z0-9_-]*";
        format!("{name}(?:\\.{name}){{0,{}}}", MAX_EXPAND_DEPTH - 1)
    } else {
        path
    };
    let more = MAX_EXPAND_PATHS - 1;
    Some(json!({
        "name": "expand", "in": "query", "required": false,
        "description": format!(
            "Comma list of at most {MAX_EXPAND_PATHS} relation paths of at most {MAX_EXPAND_DEPTH} names each (`author,tags,author.org`): relation fields and back-relations `<collection>_via_<field>`. The related documents go under `doc.expand.<name>` — an object, or an array for a to-many relation (in its order) and a back-relation (at most {MAX_BACK_RELATED}, oldest first) — each as the caller may read it. The pattern lists the paths every caller may expand; a path through a field with a `read` rule is taken from callers who may always read it."
        ),
        "schema": {"type": "string", "pattern": format!("^(?:{path})(?:,(?:{path})){{0,{more}}}$")},
    }))
}

/// The paths of at most `depth` names from `collection` that every caller may expand, as a
/// regular expression (a trie of alternatives); `None` when there are none. Spends `budget`
/// characters, and leaves it at 0 when the pattern would be longer.
fn paths(
    schema: &Schema,
    collection: &Collection,
    depth: usize,
    budget: &mut usize,
) -> Option<String> {
    if depth == 0 {
        return None;
    }
    let mut alternatives = Vec::new();
    for name in names(schema, collection).into_iter().filter(|n| n.open) {
        // Names hold `[A-Za-z0-9_-]` only: nothing to escape.
        let alternative = match paths(schema, name.target, depth - 1, budget) {
            Some(rest) => format!("{}(?:\\.(?:{rest}))?", name.name),
            None => name.name,
        };
        *budget = budget.saturating_sub(alternative.len() + 1);
        alternatives.push(alternative);
    }
    (!alternatives.is_empty()).then(|| alternatives.join("|"))
}
