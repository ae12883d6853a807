// Uses the types `lucent types --lang ts` writes for the example project (lucent.toml and
// schemas/posts.toml); tests/api/types.rs compiles it with `tsc --strict`. Each line under an
// "expect-error" directive below must fail to compile, or tsc fails.
import type {
  LucentCollections,
  LucentError,
  LucentJson,
  Posts,
  PostsCreate,
  PostsExpand,
  PostsPage,
  PostsSelected,
  PostsUpdate,
  Users,
  UsersCreate,
} from "./lucent-types";

export const create: PostsCreate = {
  title: "Hello",
  slug: "hello",
  status: "published",
  views: 3,
  meta: { tags: ["a", "b"], nested: { ok: true } },
  author: "0190c2a4-8b6e-7c3d-9f00-123456789abc",
  related: ["0190c2a4-8b6e-7c3d-9f00-123456789abd"],
};
export const update: PostsUpdate = { body: null, status: "draft", published: null };
export const signUp: UsersCreate = { email: "jane@example.com", password: "correct horse battery staple" };

export function statusLabel(post: Posts): string {
  switch (post.status) {
    case "draft":
      return "Draft";
    case "published":
      return "Published";
    case null:
      return "-";
  }
}

export function titles(page: PostsPage): string[] {
  return page.docs.map((doc: PostsSelected) => doc.title ?? doc.id);
}

export function authorOf(post: Posts): string | null {
  return post.author;
}

// A to-many relation is an array of ids, never null.
export function relatedCount(post: Posts): number {
  return post.related.length;
}

// `expand=author,related,author.posts_via_author`: related documents under `expand`, each
// optional (absent when not asked for or not readable), nested ones in their own `expand`.
export function authorName(post: PostsSelected): string | null {
  return post.expand?.author?.name ?? null;
}
export function relatedTitles(post: Posts): string[] {
  return (post.expand?.related ?? []).map((p: Posts) => p.title);
}
export function authorsPosts(post: Posts): number {
  return post.expand?.author?.expand?.posts_via_author?.length ?? 0;
}
export const expanded: PostsExpand = {};

export function errorCode(answer: LucentError): string {
  return answer.error.details.length > 0 ? answer.error.details[0].code : answer.error.code;
}

export const meta: LucentJson = [1, "two", { three: null }];

type PostsDocument = LucentCollections["posts"]["document"];
export const sameType: PostsDocument extends Posts ? (Posts extends PostsDocument ? true : false) : false = true;

// @ts-expect-error: "archived" is not one of the status options
export const wrongStatus: PostsCreate = { title: "x", status: "archived" };
// @ts-expect-error: title is required on create
export const noTitle: PostsCreate = {};
// @ts-expect-error: no such field
export const unknownField: PostsUpdate = { colour: "red" };
// @ts-expect-error: relation ids are strings
export const numericAuthor: PostsCreate = { title: "x", author: 5 };
// @ts-expect-error: a to-many relation takes a list of ids, not one
export const oneRelated: PostsCreate = { title: "x", related: "0190c2a4-8b6e-7c3d-9f00-123456789abd" };
// @ts-expect-error: the id is read-only
export function rename(post: Posts) { post.id = "x"; }
// @ts-expect-error: a password is never in an answer
export function leak(user: Users) { return user.password; }
// @ts-expect-error: a selected document may lack its title
export function unsafeTitle(post: PostsSelected): string { return post.title; }
// @ts-expect-error: an expanded relation may be absent
export function unsafeAuthor(post: Posts): string { return post.expand.author.name; }
// @ts-expect-error: only relations are expanded
export const expandedTitle: PostsExpand = { title: "x" };
// @ts-expect-error: role is one of the options
export const badRole: Users["role"] = "owner";
