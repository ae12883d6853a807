//! Syntax tree → checked tree: every name resolved against the schema (the only place names are
//! looked up, so nothing unchecked reaches SQL) and every operator's operands type-checked.
//! String literals compared with datetimes become datetimes here, once.

use std::collections::BTreeMap;

use super::ast::{CmpOp, Expr, ExprKind, Literal, Segment};
use super::error::RuleError;
use super::ir::{Column, Exists, Hop, Ids, Link, MAX_PATTERN, Node, Ty, UserAttr, Val};
use super::{Mode, Resolver};
use crate::schema::{Collection, Field, FieldKind, Schema, Step, join_table, parse_time};

/// Most relations one path may cross (`author.org.owner.name` crosses three).
pub const MAX_HOPS: usize = 3;

/// Most `~` comparisons one filter may hold (SPEC §7). Each is a substring search over the whole
/// stored text of every row the list reaches: measured ~0.5 s per clause over a 900 KiB value
/// with a 256-character operand, so the count is what bounds a filter's work, not its length.
pub const MAX_CONTAINS: usize = 8;

/// Most characters the literal operands of one filter's `~` comparisons may hold together.
pub const MAX_CONTAINS_CHARS: usize = 1024;

/// What names mean for one rule.
pub struct Names<'a> {
    pub mode: Mode,
    pub schema: &'a Schema,
    pub collection: &'a Collection,
    pub resolver: &'a dyn Resolver,
}

/// Checks a parsed expression as a condition.
///
/// # Errors
/// Every unknown name and type mismatch, each at the column of the offending operand.
pub fn check(expr: &Expr, names: &Names<'_>) -> Result<Node, Vec<RuleError>> {
    let mut checker = Checker {
        names,
        user_fields: user_fields(names.schema),
        errors: Vec::new(),
        contains: 0,
        contains_chars: 0,
        contains_refused: false,
    };
    match checker.condition(expr) {
        Some(node) if checker.errors.is_empty() => Ok(node),
        _ => Err(checker.errors),
    }
}

/// `user.<field>`: the non-hidden fields of every auth collection. A name declared with different
/// types in different collections gets [`Ty::Any`].
fn user_fields(schema: &Schema) -> BTreeMap<String, Ty> {
    let mut fields = BTreeMap::new();
    let declared = schema
        .collections
        .iter()
        .filter(|c| c.auth.is_some())
        .flat_map(|c| &c.fields);
    // A list is not part of the signed-in account (it lives in a join table).
    for field in declared.filter(|f| !f.hidden && f.has_column()) {
        let ty = Ty::of(&field.kind);
        fields
            .entry(field.name.clone())
            .and_modify(|t: &mut Ty| {
                if *t != ty {
                    *t = Ty::Any
                }
            })
            .or_insert(ty);
    }
    fields.insert("createdAt".into(), Ty::Time);
    fields.insert("updatedAt".into(), Ty::Time);
    fields
}

struct Checker<'a> {
    names: &'a Names<'a>,
    user_fields: BTreeMap<String, Ty>,
    errors: Vec<RuleError>,
    /// `~` comparisons met so far, and the characters of their literal operands (filters only).
    contains: usize,
    contains_chars: usize,
    /// Whether a `~` over the limits has been reported (the first one is enough).
    contains_refused: bool,
}

impl Checker<'_> {
    fn fail<T>(&mut self, column: usize, message: impl Into<String>) -> Option<T> {
        self.errors.push(RuleError::new(column, message));
        None
    }

    /// An operand of `&&`, `||`, `!` or the whole rule: a boolean.
    fn condition(&mut self, expr: &Expr) -> Option<Node> {
        let (node, ty) = self.value(expr)?;
        match ty {
            Ty::Bool | Ty::Any => Some(node),
            other => self.fail(
                expr.column,
                format!("expected a condition (true or false), found {other}"),
            ),
        }
    }

    fn value(&mut self, expr: &Expr) -> Option<(Node, Ty)> {
        match &expr.kind {
            ExprKind::Or(items) | ExprKind::And(items) => {
                // Check every operand, even after a failing one, to report all errors at once.
                let checked: Vec<Option<Node>> =
                    items.iter().map(|item| self.condition(item)).collect();
                let nodes = checked.into_iter().collect::<Option<Vec<_>>>()?;
                let node = if matches!(expr.kind, ExprKind::Or(_)) {
                    Node::Or(nodes)
                } else {
                    Node::And(nodes)
                };
                Some((node, Ty::Bool))
            }
            ExprKind::Not(inner) => Some((Node::Not(Box::new(self.condition(inner)?)), Ty::Bool)),
            ExprKind::Cmp(op, left, right) => {
                Some((self.comparison(*op, left, right, expr.column)?, Ty::Bool))
            }
            ExprKind::Lit(literal) => Some(match literal {
                Literal::Str(s) => (Node::Const(Val::Str(s.clone())), Ty::Str),
                Literal::Int(i) => (Node::Const(Val::Int(*i)), Ty::Int),
                Literal::Float(x) => (Node::Const(Val::Float(*x)), Ty::Float),
                Literal::Bool(b) => (Node::Const(Val::Bool(*b)), Ty::Bool),
                Literal::Null => (Node::Const(Val::Null), Ty::Null),
                Literal::Now => (Node::Now, Ty::Time),
            }),
            ExprKind::Path(segments) => self.path(segments),
            ExprKind::List(_) => self.fail(expr.column, "a list can only follow `in`"),
        }
    }

    /// `column` is the operator's.
    fn comparison(&mut self, op: CmpOp, left: &Expr, right: &Expr, column: usize) -> Option<Node> {
        if op == CmpOp::In {
            return self.membership(left, right);
        }
        let (l, r) = (self.value(left), self.value(right));
        let (l, r) = (l?, r?);
        let (l_ids, r_ids) = (self.no_ids(left, &l), self.no_ids(right, &r));
        l_ids?;
        r_ids?;
        let ((l, lt), (r, rt)) = if op == CmpOp::Contains {
            (l, r)
        } else {
            let (lt, rt) = (l.1.clone(), r.1.clone());
            let (l, r) = (self.coerce(l, left, &rt), self.coerce(r, right, &lt));
            (l?, r?)
        };
        match op {
            CmpOp::Eq | CmpOp::Ne => {
                if !comparable(&lt, &rt) {
                    return self.fail(blame(left, right), format!("cannot compare {lt} with {rt}"));
                }
            }
            CmpOp::Lt | CmpOp::Le | CmpOp::Gt | CmpOp::Ge => {
                if !lt.orderable() {
                    return self.fail(
                        left.column,
                        format!("`{}` cannot order {lt} values", op.symbol()),
                    );
                }
                if !rt.orderable() {
                    return self.fail(
                        right.column,
                        format!("`{}` cannot order {rt} values", op.symbol()),
                    );
                }
                if !comparable(&lt, &rt) {
                    return self.fail(blame(left, right), format!("cannot compare {lt} with {rt}"));
                }
            }
            CmpOp::Contains => {
                for (ty, expr) in [(&lt, left), (&rt, right)] {
                    if !matches!(ty, Ty::Str | Ty::Null | Ty::Any) {
                        return self.fail(expr.column, format!("`~` needs strings, found {ty}"));
                    }
                    if let ExprKind::Lit(Literal::Str(s)) = &expr.kind
                        && s.chars().count() > MAX_PATTERN
                    {
                        return self.fail(
                            expr.column,
                            format!("`~` operand longer than {MAX_PATTERN} characters"),
                        );
                    }
                }
                if r.uses_doc() {
                    // A pattern from a column would need escaping inside SQL; nobody has asked
                    // for it, so it is refused rather than half-supported.
                    return self.fail(
                        right.column,
                        "the right side of `~` cannot be a document field",
                    );
                }
                if self.names.mode == Mode::Filter {
                    self.count_contains(left, right, column)?;
                }
            }
            CmpOp::In => unreachable!("handled above"),
        }
        self.join(op, (left, l), (right, r), column)
    }

    /// `l op r`, moved inside the [`Exists`] of the operand that is a relation path:
    /// `author.name == 'Ann'` holds when some author the caller may read is named Ann. The other
    /// operand then reads the starting document as `Outer`; it may not cross relations itself.
    fn join(
        &mut self,
        op: CmpOp,
        (left, l): (&Expr, Node),
        (right, r): (&Expr, Node),
        column: usize,
    ) -> Option<Node> {
        let (l_path, r_path) = (is_path(left, &l), is_path(right, &r));
        let (path, other, path_on_left) = match (l, r) {
            (l, r) if !l_path && !r_path => {
                return Some(Node::Cmp(op, Box::new(l), Box::new(r)));
            }
            (l, r) if l_path => (l, r, true),
            (l, r) => (r, l, false),
        };
        let Node::Exists(mut exists) = path else {
            return self.fail(column, "a relation path lost its relations");
        };
        if other.crosses() || other.reads_ids() {
            return self.fail(column, "only one side of a comparison may cross relations");
        }
        let (inner, other) = (Box::new(exists.cond), Box::new(other.outer()));
        exists.cond = if path_on_left {
            Node::Cmp(op, inner, other)
        } else {
            Node::Cmp(op, other, inner)
        };
        Some(Node::Exists(exists))
    }

    /// Counts one `~` of a filter against [`MAX_CONTAINS`] and [`MAX_CONTAINS_CHARS`]; the first
    /// comparison over either limit is the error (at its operator), later ones add nothing.
    fn count_contains(&mut self, left: &Expr, right: &Expr, column: usize) -> Option<()> {
        let literal = |expr: &Expr| match &expr.kind {
            ExprKind::Lit(Literal::Str(s)) => s.chars().count(),
            _ => 0,
        };
        self.contains += 1;
        self.contains_chars += literal(left) + literal(right);
        let message = if self.contains > MAX_CONTAINS {
            format!("a filter may hold at most {MAX_CONTAINS} `~` comparisons")
        } else if self.contains_chars > MAX_CONTAINS_CHARS {
            format!(
                "the `~` operands of a filter may hold at most {MAX_CONTAINS_CHARS} characters in all"
            )
        } else {
            return Some(());
        };
        if std::mem::replace(&mut self.contains_refused, true) {
            return None;
        }
        self.fail(column, message)
    }

    /// A to-many relation's ids may only be searched with `in`: anywhere else, an error.
    fn no_ids(&mut self, expr: &Expr, node: &(Node, Ty)) -> Option<()> {
        let ids = match &node.0 {
            Node::Ids(ids) => ids,
            Node::Exists(exists) => match &exists.cond {
                Node::Ids(ids) => ids,
                _ => return Some(()),
            },
            _ => return Some(()),
        };
        let name = &ids.field;
        self.fail(
            expr.column,
            format!(
                "`{name}` is a list of ids: search it with `in` (`'<id>' in {name}`) or follow it (`{name}.id`)"
            ),
        )
    }

    /// `x in [..]` (each item compared like `==`), `x in <list value>` (`user.scopes`) or
    /// `x in <to-many relation>` (`'<id>' in tags`).
    fn membership(&mut self, left: &Expr, right: &Expr) -> Option<Node> {
        let value = self.value(left)?;
        self.no_ids(left, &value)?;
        let (l, lt) = value;
        if let ExprKind::List(items) = &right.kind {
            let mut nodes = Vec::with_capacity(items.len());
            let mut ok = true;
            for item in items {
                let Some((node, ty)) = self
                    .value(item)
                    .filter(|value| self.no_ids(item, value).is_some())
                    .and_then(|value| self.coerce(value, item, &lt))
                else {
                    ok = false;
                    continue;
                };
                if !comparable(&lt, &ty) {
                    self.errors.push(RuleError::new(
                        item.column,
                        format!("cannot compare {lt} with {ty}"),
                    ));
                    ok = false;
                }
                if is_path(item, &node) {
                    self.errors.push(RuleError::new(
                        item.column,
                        "an item of a list cannot cross relations",
                    ));
                    ok = false;
                }
                nodes.push(node);
            }
            if !ok {
                return None;
            }
            return self.join(
                CmpOp::In,
                (left, l),
                (right, Node::List(nodes)),
                left.column,
            );
        }
        let (r, rt) = self.value(right)?;
        match &rt {
            Ty::List(item) if comparable(&lt, item) => {}
            Ty::List(item) => {
                return self.fail(left.column, format!("cannot compare {lt} with {item}"));
            }
            Ty::Null | Ty::Any => {}
            other => return self.fail(right.column, format!("`in` needs a list, found {other}")),
        }
        self.join(CmpOp::In, (left, l), (right, r), left.column)
    }

    /// A string literal compared with a datetime is read as RFC 3339 now, so a typo is a
    /// compile error instead of a comparison that is always false.
    fn coerce(&mut self, value: (Node, Ty), expr: &Expr, other: &Ty) -> Option<(Node, Ty)> {
        match (value, other) {
            ((Node::Const(Val::Str(text)), _), Ty::Time) => match parse_time(&text) {
                Some(time) => Some((Node::Const(Val::Time(time)), Ty::Time)),
                None => self.fail(
                    expr.column,
                    format!("invalid datetime {text:?} (expected RFC 3339)"),
                ),
            },
            (value, _) => Some(value),
        }
    }

    fn path(&mut self, segments: &[Segment]) -> Option<(Node, Ty)> {
        let head = &segments[0];
        let second = segments.get(1);
        // How many segments name the value; `user` and `data` values are scalars, so nothing
        // may follow them. `doc` paths may cross relations.
        let ((node, ty), used) = match (self.names.mode, head.name.as_str(), second) {
            (Mode::Filter, "doc", Some(_)) | (Mode::Predicate, "doc", Some(_)) => {
                return self.doc_path(&segments[1..]);
            }
            (Mode::Filter, name @ ("user" | "data"), Some(_)) => {
                return self.fail(head.column, format!("`{name}` is not available in filters"));
            }
            (Mode::Filter, _, _) => return self.doc_path(segments),
            (Mode::Predicate, "user", None) => ((Node::User, Ty::User), 1),
            (Mode::Predicate, "user", Some(attr)) => (self.user_attr(attr)?, 2),
            (Mode::Predicate, "data", Some(field)) => (self.data_field(field)?, 2),
            (Mode::Predicate, name @ ("doc" | "data"), None) => {
                return self.fail(
                    head.column,
                    format!("`{name}` needs a field, as in `{name}.title`"),
                );
            }
            (Mode::Predicate, name, _) => {
                return self.fail(
                    head.column,
                    format!("unknown name `{name}` (expected user, doc, data or now)"),
                );
            }
        };
        if let Some(extra) = segments.get(used) {
            let relation = matches!(node, Node::Data(..))
                && self
                    .names
                    .collection
                    .field(&segments[1].name)
                    .is_some_and(|f| matches!(f.kind, FieldKind::Relation { .. }));
            let message = if relation {
                "relations are followed from `doc` only (`data` holds the id)".to_string()
            } else {
                format!("a {ty} value has no field `{}`", extra.name)
            };
            return self.fail(extra.column, message);
        }
        Some((node, ty))
    }

    /// A document path: a field of the collection, or one reached across at most [`MAX_HOPS`]
    /// relations (`author.org.name`, `posts_via_author.status`). Each step names a relation
    /// field, or a back-relation `<collection>_via_<field>`; in filters every field named on
    /// the way must be one the caller may name.
    fn doc_path(&mut self, segments: &[Segment]) -> Option<(Node, Ty)> {
        let schema = self.names.schema;
        let mut collection = self.names.collection;
        let mut hops: Vec<Hop> = Vec::new();
        for (i, segment) in segments.iter().enumerate() {
            let name = segment.name.as_str();
            let next = segments.get(i + 1);
            let declared = collection.field(name);
            let step = match self.field_type(collection, name) {
                Some(ty) => {
                    let Some(next) = next else {
                        guard(&mut hops, collection, declared);
                        let value = match declared {
                            Some(field) if field.is_list() => Node::Ids(Ids {
                                field: name.to_string(),
                                join: join_table(&collection.slug, name),
                            }),
                            _ => Node::Doc(Column {
                                name: name.to_string(),
                                ty: ty.clone(),
                            }),
                        };
                        return Some((wrap(hops, value), ty));
                    };
                    match schema.step(collection, name) {
                        Some(step @ Step::Forward { .. }) => step,
                        _ => {
                            return self.fail(
                                next.column,
                                format!("a {ty} value has no field `{}`", next.name),
                            );
                        }
                    }
                }
                None => match schema.step(collection, name) {
                    Some(step @ Step::Back { from, field })
                        if declared.is_none() && self.usable(from, field) =>
                    {
                        if next.is_none() {
                            return self.fail(
                                segment.column,
                                format!("`{name}` needs a field, as in `{name}.id`"),
                            );
                        }
                        step
                    }
                    _ => return self.fail(segment.column, format!("unknown field {name:?}")),
                },
            };
            if hops.len() == MAX_HOPS {
                return self.fail(
                    segment.column,
                    format!("a path may cross at most {MAX_HOPS} relations"),
                );
            }
            let target = step.target();
            let column = step.field().name.clone();
            let (link, guarded) = match step {
                Step::Forward { field, .. } => {
                    guard(&mut hops, collection, Some(field));
                    let link = if field.is_list() {
                        Link::ForwardMany {
                            join: join_table(&collection.slug, &column),
                            field: column,
                        }
                    } else {
                        Link::Forward { column }
                    };
                    (link, Vec::new())
                }
                Step::Back { field, from } => {
                    let link = if field.is_list() {
                        Link::BackMany {
                            join: join_table(&from.slug, &column),
                            field: column,
                        }
                    } else {
                        Link::Back { column }
                    };
                    (link, read_guarded(from, field))
                }
            };
            hops.push(Hop {
                to: schema.index_of(&target.slug)?,
                table: target.slug.clone(),
                link,
                guarded,
            });
            collection = target;
        }
        // Unreachable: the last segment ends the path above, and callers pass at least one.
        let column = segments.last().map_or(1, |s| s.column);
        self.fail(column, "an empty path")
    }

    /// The type of a field of `collection` (system fields included) that this rule may name:
    /// in filters, not hidden and allowed by the resolver; otherwise `None`, exactly as for a
    /// name that is not declared, so filters cannot probe for fields the caller may not read.
    fn field_type(&self, collection: &Collection, name: &str) -> Option<Ty> {
        match name {
            "id" => Some(Ty::Str),
            "createdAt" | "updatedAt" => Some(Ty::Time),
            _ => match collection.field(name) {
                Some(field) => self.usable(collection, field).then(|| Ty::of(&field.kind)),
                None => self.unsure_field(collection, name),
            },
        }
    }

    /// Whether this rule may name `field`: predicates any, filters what the resolver allows.
    fn usable(&self, collection: &Collection, field: &Field) -> bool {
        self.names.mode == Mode::Predicate
            || (!field.hidden && self.names.resolver.nameable(collection, field))
    }

    fn data_field(&mut self, segment: &Segment) -> Option<(Node, Ty)> {
        let name = segment.name.as_str();
        if let Some(error) = self.list_field(segment) {
            return error;
        }
        match self
            .names
            .collection
            .field(name)
            .map(|field| Ty::of(&field.kind))
            .or_else(|| self.unsure_field(self.names.collection, name))
        {
            Some(ty) => Some((Node::Data(name.to_string(), ty.clone()), ty)),
            None => self.fail(segment.column, format!("unknown field {name:?}")),
        }
    }

    /// A to-many relation has no column to compare: naming one is an error (`Some(None)`). An
    /// unreadable one reads as unknown, like any field the caller may not name.
    fn list_field(&mut self, segment: &Segment) -> Option<Option<(Node, Ty)>> {
        let name = segment.name.as_str();
        let field = self.names.collection.field(name)?;
        if !field.is_list() || !self.usable(self.names.collection, field) {
            return None;
        }
        Some(self.fail(
            segment.column,
            format!("`{name}` is a list of ids (a to-many relation): rules and filters cannot compare it"),
        ))
    }

    /// A field the schema lacks only because the configuration has errors elsewhere (see
    /// [`crate::schema::Gaps`]): of unknown type, so it causes no error of its own.
    fn unsure_field(&self, collection: &Collection, name: &str) -> Option<Ty> {
        self.names
            .schema
            .gaps
            .may_have_field(&collection.slug, name)
            .then_some(Ty::Any)
    }

    fn user_attr(&mut self, segment: &Segment) -> Option<(Node, Ty)> {
        let (attr, ty) = match segment.name.as_str() {
            "id" => (UserAttr::Id, Ty::Str),
            "collection" => (UserAttr::Collection, Ty::Str),
            "scopes" => (UserAttr::Scopes, Ty::List(Box::new(Ty::Str))),
            // A field that an auth collection with errors may declare, or declare otherwise.
            name if self.names.schema.gaps.user_fields.contains(name) => {
                (UserAttr::Field(name.to_string(), Ty::Any), Ty::Any)
            }
            name => match self.user_fields.get(name) {
                Some(ty) => (UserAttr::Field(name.to_string(), ty.clone()), ty.clone()),
                None => return self.fail(segment.column, format!("unknown field {name:?}")),
            },
        };
        Some((Node::UserAttr(attr), ty))
    }
}

/// Whether an operand is a relation path whose comparison has not been built yet (a path
/// crossing relations checks as an [`Exists`] over its bare column).
fn is_path(expr: &Expr, node: &Node) -> bool {
    matches!(expr.kind, ExprKind::Path(_)) && matches!(node, Node::Exists(_))
}

/// A column, or the [`Exists`] that reaches it across `hops`.
fn wrap(hops: Vec<Hop>, column: Node) -> Node {
    if hops.is_empty() {
        column
    } else {
        Node::Exists(Box::new(Exists { hops, cond: column }))
    }
}

/// The fields of `field` (one) that a field `read` rule guards.
fn read_guarded(collection: &Collection, field: &Field) -> Vec<usize> {
    match (
        field.access.read.is_some(),
        collection.fields.iter().position(|f| f.name == field.name),
    ) {
        (true, Some(index)) => vec![index],
        _ => Vec::new(),
    }
}

/// Records that the path reads `field` of `collection`, the collection the last hop reached (if
/// any hop): its field `read` rule must pass there too. The starting document's own fields are
/// the rule's to read.
fn guard(hops: &mut [Hop], collection: &Collection, field: Option<&Field>) {
    if let (Some(hop), Some(field)) = (hops.last_mut(), field) {
        for index in read_guarded(collection, field) {
            if !hop.guarded.contains(&index) {
                hop.guarded.push(index);
            }
        }
    }
}

/// Whether `==` may compare the two types. Json, lists and `user` only meet null.
fn comparable(a: &Ty, b: &Ty) -> bool {
    a.loose()
        || b.loose()
        || (a.is_number() && b.is_number())
        || (a == b && matches!(a, Ty::Str | Ty::Bool | Ty::Time))
}

/// Which operand a type mismatch points at: the literal, when one side is a literal (it is what
/// the author most likely got wrong), else the right side.
fn blame(left: &Expr, right: &Expr) -> usize {
    let is_literal = |e: &Expr| matches!(e.kind, ExprKind::Lit(_));
    if is_literal(left) && !is_literal(right) {
        left.column
    } else {
        right.column
    }
}

#[cfg(test)]
mod tests {
    use super::super::Mode::{Filter, Predicate};
    use super::super::tests::compile;

    #[test]
    fn accepted_table() {
        let cases = [
            (
                Predicate,
                "doc.status == 'published' || (user != null && doc.author == user.id)",
            ),
            (
                Predicate,
                "user != null && (user.scopes == null || 'write' in user.scopes || 'admin' in user.scopes)",
            ),
            (Predicate, "data.author == user.id || user.role == 'admin'"),
            (Predicate, "doc.secret == null && doc.private == null"),
            (
                Predicate,
                "doc.createdAt < now && doc.publishedAt >= '2026-01-01T00:00:00Z'",
            ),
            (
                Predicate,
                "doc.views > 2.5 && doc.score == 3 && doc.views == doc.score",
            ),
            (Predicate, "doc.flag && !doc.flag == (doc.views > 1)"),
            (Predicate, "doc.meta == null || doc.meta != null"),
            (Predicate, "user.level == 3 || user.level == 'x'"),
            (
                Predicate,
                "doc.title ~ user.name && user.collection == 'users' && user.verified",
            ),
            (Predicate, "doc.updatedAt in ['2026-01-01T00:00:00Z', null]"),
            (
                Predicate,
                "'a' in [doc.title, doc.body] && doc.title in user.scopes && doc.title in null",
            ),
            (
                Filter,
                "title ~ 'x' && doc.views > 1 && id != null && createdAt < now",
            ),
            (Filter, "status in ['draft', 'published']"),
        ];
        for (mode, source) in cases {
            if let Err(errors) = compile(source, mode) {
                panic!("{source}: {errors:?}");
            }
        }
    }

    #[test]
    fn errors_table() {
        let long = format!("doc.title ~ '{}'", "x".repeat(257));
        let cases: Vec<(_, &str, Vec<(usize, &str)>)> = vec![
            (
                Predicate,
                "doc.titel == 'x'",
                vec![(5, r#"unknown field "titel""#)],
            ),
            (
                Predicate,
                "title == 'x'",
                vec![(1, "unknown name `title` (expected user, doc, data or now)")],
            ),
            (
                Predicate,
                "user.password == 'x'",
                vec![(6, r#"unknown field "password""#)],
            ),
            (
                Predicate,
                "data.id == 'x'",
                vec![(6, r#"unknown field "id""#)],
            ),
            (
                Predicate,
                "doc == null",
                vec![(1, "`doc` needs a field, as in `doc.title`")],
            ),
            (
                Predicate,
                "doc.title.x == 1",
                vec![(11, "a string value has no field `x`")],
            ),
            (
                Predicate,
                "doc.views == 'x'",
                vec![(14, "cannot compare integer with string")],
            ),
            (
                Predicate,
                "'x' == doc.views",
                vec![(1, "cannot compare string with integer")],
            ),
            (
                Predicate,
                "doc.title > 3",
                vec![(13, "cannot compare string with integer")],
            ),
            (
                Predicate,
                "doc.title == doc.views",
                vec![(14, "cannot compare string with integer")],
            ),
            (
                Predicate,
                "doc.flag ~ 'a'",
                vec![(1, "`~` needs strings, found boolean")],
            ),
            (
                Predicate,
                "doc.title ~ 1",
                vec![(13, "`~` needs strings, found integer")],
            ),
            (
                Predicate,
                "doc.flag < true",
                vec![(1, "`<` cannot order boolean values")],
            ),
            (
                Predicate,
                "doc.meta == 1",
                vec![(13, "cannot compare json with integer")],
            ),
            (
                Predicate,
                "user == 'x'",
                vec![(9, "cannot compare user with string")],
            ),
            (
                Predicate,
                "doc.publishedAt < 'yesterday'",
                vec![(19, r#"invalid datetime "yesterday" (expected RFC 3339)"#)],
            ),
            (
                Predicate,
                "doc.title",
                vec![(1, "expected a condition (true or false), found string")],
            ),
            (
                Predicate,
                "user",
                vec![(1, "expected a condition (true or false), found user")],
            ),
            (
                Predicate,
                "!doc.views",
                vec![(2, "expected a condition (true or false), found integer")],
            ),
            (
                Predicate,
                "[1] == [1]",
                vec![
                    (1, "a list can only follow `in`"),
                    (8, "a list can only follow `in`"),
                ],
            ),
            (
                Predicate,
                "doc.views in ['a', 1, true]",
                vec![
                    (15, "cannot compare integer with string"),
                    (23, "cannot compare integer with boolean"),
                ],
            ),
            (
                Predicate,
                "doc.views in user.scopes",
                vec![(1, "cannot compare integer with string")],
            ),
            (
                Predicate,
                "doc.title in doc.views",
                vec![(14, "`in` needs a list, found integer")],
            ),
            (
                Predicate,
                "user.name ~ doc.title",
                vec![(13, "the right side of `~` cannot be a document field")],
            ),
            (
                Predicate,
                &long,
                vec![(13, "`~` operand longer than 256 characters")],
            ),
            (
                Predicate,
                "doc.a == 1 || doc.b == 2 && x",
                vec![
                    (5, r#"unknown field "a""#),
                    (19, r#"unknown field "b""#),
                    (29, "unknown name `x` (expected user, doc, data or now)"),
                ],
            ),
            (
                Filter,
                "secret == 'x'",
                vec![(1, r#"unknown field "secret""#)],
            ),
            (
                Filter,
                "private == 'x'",
                vec![(1, r#"unknown field "private""#)],
            ),
            (
                Filter,
                "nothing == 'x'",
                vec![(1, r#"unknown field "nothing""#)],
            ),
            (
                Filter,
                "doc.secret == 'x'",
                vec![(5, r#"unknown field "secret""#)],
            ),
            (
                Filter,
                "user.id == 'x'",
                vec![(1, "`user` is not available in filters")],
            ),
            (
                Filter,
                "data.title == 'x'",
                vec![(1, "`data` is not available in filters")],
            ),
            (Filter, "user == null", vec![(1, r#"unknown field "user""#)]),
            (
                Filter,
                "title.x == 1",
                vec![(7, "a string value has no field `x`")],
            ),
        ];
        for (mode, source, expected) in cases {
            let errors = compile(source, mode).expect_err(source);
            let got: Vec<(usize, &str)> = errors
                .iter()
                .map(|e| (e.column, e.message.as_str()))
                .collect();
            assert_eq!(got, expected, "{source}");
        }
    }

    /// Paths across relations (SPEC §10): what checks, and the errors — in filters a field the
    /// caller may not name reads like a missing one wherever the path reaches it.
    #[test]
    fn relation_paths_table() {
        let accepted = [
            (Filter, "author.name == 'Ann'"),
            (Filter, "doc.author.name ~ 'an' && author.verified"),
            (Filter, "!(author.name == 'x') || author.level > 2"),
            (Filter, "author.org.name == 'Acme'"),
            (Filter, "posts_via_parent.title == 'x'"),
            (Filter, "author.posts_via_author.views > 1"),
            (Filter, "author.org.users_via_org.name == 'x'"),
            (Filter, "parent.parent.parent.title == 'x'"),
            (Filter, "author.name == title && 'Ann' == author.name"),
            (Filter, "author.name in ['a', 'b', title]"),
            (Filter, "author.id == 'u1' && author.org == null"),
            (Filter, "author.nickname == 'x'"),
            (Filter, "flag == (author.name == 'x')"),
            (
                Predicate,
                "doc.author.password == 'x' && doc.author.private == 'y'",
            ),
            (
                Predicate,
                "doc.author.role == user.role || doc.author.name in user.scopes",
            ),
            (Predicate, "doc.author.name == data.title"),
            (Filter, "'t1' in tags && title in tags && !('t2' in tags)"),
            (Filter, "tags.name == 'rust' || tags.name ~ 'ru'"),
            (Filter, "tags.posts_via_tags.title == 'x'"),
            (
                Filter,
                "'t1' in parent.tags && parent.tags.name in ['a', 'b']",
            ),
            (
                Predicate,
                "user.id in doc.tags || doc.tags.name == user.name",
            ),
        ];
        for (mode, source) in accepted {
            if let Err(errors) = compile(source, mode) {
                panic!("{source}: {errors:?}");
            }
        }
        let cases: Vec<(_, &str, Vec<(usize, &str)>)> = vec![
            (
                Filter,
                "author.password == 'x'",
                vec![(8, r#"unknown field "password""#)],
            ),
            (
                Filter,
                "author.private == 'x'",
                vec![(8, r#"unknown field "private""#)],
            ),
            (
                Filter,
                "author.nope == 'x'",
                vec![(8, r#"unknown field "nope""#)],
            ),
            (
                Filter,
                "users_via_org.name == 'x'",
                vec![(1, r#"unknown field "users_via_org""#)],
            ),
            (
                Filter,
                "parent.parent.parent.parent.title == 'x'",
                vec![(22, "a path may cross at most 3 relations")],
            ),
            (
                Filter,
                "author.name.x == 'y'",
                vec![(13, "a string value has no field `x`")],
            ),
            (
                Filter,
                "title.x == 'y'",
                vec![(7, "a string value has no field `x`")],
            ),
            (
                Filter,
                "posts_via_parent == null",
                vec![(
                    1,
                    "`posts_via_parent` needs a field, as in `posts_via_parent.id`",
                )],
            ),
            (
                Filter,
                "author.name == parent.title",
                vec![(13, "only one side of a comparison may cross relations")],
            ),
            (
                Filter,
                "flag == (author.name == parent.title)",
                vec![(22, "only one side of a comparison may cross relations")],
            ),
            (
                Filter,
                "author.verified == (parent.title == 'x')",
                vec![(17, "only one side of a comparison may cross relations")],
            ),
            (
                Filter,
                "'x' in [title, author.name]",
                vec![(16, "an item of a list cannot cross relations")],
            ),
            (
                Filter,
                "author.name ~ title",
                vec![(15, "the right side of `~` cannot be a document field")],
            ),
            (
                Filter,
                "author.name == 3",
                vec![(16, "cannot compare string with integer")],
            ),
            (
                Predicate,
                "data.author.name == 'x'",
                vec![(
                    13,
                    "relations are followed from `doc` only (`data` holds the id)",
                )],
            ),
            (
                Predicate,
                "data.title.x == 'x'",
                vec![(12, "a string value has no field `x`")],
            ),
            (
                Filter,
                "tags == null",
                vec![(
                    1,
                    "`tags` is a list of ids: search it with `in` (`'<id>' in tags`) or follow it (`tags.id`)",
                )],
            ),
            (
                Filter,
                "tags in ['a']",
                vec![(
                    1,
                    "`tags` is a list of ids: search it with `in` (`'<id>' in tags`) or follow it (`tags.id`)",
                )],
            ),
            (
                Filter,
                "'a' in [title, tags]",
                vec![(
                    16,
                    "`tags` is a list of ids: search it with `in` (`'<id>' in tags`) or follow it (`tags.id`)",
                )],
            ),
            (
                Filter,
                "parent.tags != null",
                vec![(
                    1,
                    "`tags` is a list of ids: search it with `in` (`'<id>' in tags`) or follow it (`tags.id`)",
                )],
            ),
            (
                Filter,
                "parent.id in tags",
                vec![(1, "only one side of a comparison may cross relations")],
            ),
            (
                Filter,
                "tags",
                vec![(1, "expected a condition (true or false), found list")],
            ),
            (
                Filter,
                "3 in tags",
                vec![(1, "cannot compare integer with string")],
            ),
            (
                Filter,
                "tags.nope == 'x'",
                vec![(6, r#"unknown field "nope""#)],
            ),
        ];
        for (mode, source, expected) in cases {
            let errors = compile(source, mode).expect_err(source);
            let got: Vec<(usize, &str)> = errors
                .iter()
                .map(|e| (e.column, e.message.as_str()))
                .collect();
            assert_eq!(got, expected, "{source}");
        }
    }

    /// A filter's `~` work is capped by count and by operand characters (SPEC §7); predicates,
    /// written by the project, are not.
    #[test]
    fn contains_limits() {
        let clauses = |n: usize, operand: &str| vec![format!("body ~ '{operand}'"); n].join(" && ");
        // The column of the nth `~` (1-based), where its error points.
        let at = |source: &str, nth: usize| source.match_indices('~').nth(nth - 1).unwrap().0 + 1;
        let count = "a filter may hold at most 8 `~` comparisons";
        let chars = "the `~` operands of a filter may hold at most 1024 characters in all";
        let x256 = "x".repeat(256);
        let sides = |last: usize| {
            let (left, last) = ("x".repeat(200), "x".repeat(last));
            format!("'{left}' ~ 'a' && {} && body ~ '{last}'", clauses(3, &x256))
        };
        let accepted = [
            (Filter, clauses(8, "x")),
            (Filter, format!("{} && title ~ ''", clauses(4, &x256))),
            (
                Filter,
                format!("({}) || !({})", clauses(4, "x"), clauses(4, "y")),
            ),
            // Literals on either side count: 200 + 1 + 3 × 256 + 55 = 1024.
            (Filter, sides(55)),
            (Predicate, clauses(12, "x").replace("body", "doc.body")),
        ];
        for (mode, source) in &accepted {
            assert!(compile(source, *mode).is_ok(), "{source}");
        }
        let nine = clauses(9, "x");
        let ten = format!("{nine} || body ~ 'z'");
        let over = format!("{} && title ~ 'y'", clauses(4, &x256));
        let sides = sides(56);
        let refused = [
            (&nine, vec![(at(&nine, 9), count)]),
            // Only the first comparison over the limit is reported.
            (&ten, vec![(at(&ten, 9), count)]),
            (&over, vec![(at(&over, 5), chars)]),
            (&sides, vec![(at(&sides, 5), chars)]),
        ];
        for (source, expected) in refused {
            let errors = compile(source, Filter).expect_err(source);
            let got: Vec<(usize, &str)> = errors
                .iter()
                .map(|e| (e.column, e.message.as_str()))
                .collect();
            assert_eq!(got, expected, "{source}");
        }
    }

    /// A to-many relation has no column: it is searched with `in` or followed, and compared any
    /// other way it is an error (a hidden one reads as unknown in a filter); a body's list
    /// cannot be compared at all, and a list is not a `user` field.
    #[test]
    fn lists_are_searched_or_followed() {
        use crate::config::{Source, build_schema};
        let table: toml::Table = toml::from_str(
            r#"
            [tags]
            [users]
            auth = true
            [users.fields]
            likes = { type = "relation", to = "tags", many = true }
            [posts.fields]
            tags = { type = "relation", to = "tags", many = true }
            kept = { type = "relation", to = "tags", many = true, hidden = true }
            "#,
        )
        .unwrap();
        let sources = table
            .into_iter()
            .map(|(slug, table)| Source {
                file: "t.toml".into(),
                prefix: String::new(),
                slug: Some(slug),
                table: table.as_table().unwrap().clone(),
            })
            .collect();
        let schema = build_schema(sources).unwrap();
        let posts = schema.get("posts").unwrap();
        let list =
            "`tags` is a list of ids (a to-many relation): rules and filters cannot compare it";
        let search = "`tags` is a list of ids: search it with `in` (`'<id>' in tags`) or follow it (`tags.id`)";
        let anything = |_: &crate::schema::Collection, _: &crate::schema::Field| true;
        for source in [
            "'x' in doc.tags",
            "doc.tags.id == 'x'",
            "user.id in doc.tags",
        ] {
            crate::rules::Rule::compile(source, Predicate, &schema, posts, &anything)
                .unwrap_or_else(|e| panic!("{source}: {e:?}"));
        }
        let cases: Vec<(crate::rules::Mode, &str, (usize, &str))> = vec![
            (Predicate, "doc.tags != null", (1, search)),
            (Predicate, "data.tags == null", (6, list)),
            (Filter, "tags == 'x'", (1, search)),
            (Filter, "kept == 'x'", (1, r#"unknown field "kept""#)),
            (
                Predicate,
                "user.likes == null",
                (6, r#"unknown field "likes""#),
            ),
        ];
        for (mode, source, expected) in cases {
            let errors =
                crate::rules::Rule::compile(source, mode, &schema, posts, &anything).unwrap_err();
            let got: Vec<(usize, &str)> = errors
                .iter()
                .map(|e| (e.column, e.message.as_str()))
                .collect();
            assert_eq!(got, vec![expected], "{source}");
        }
    }
}
