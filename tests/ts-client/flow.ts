// A client's life against the example project, written against the types openapi-typescript
// generates from Lucent's OpenAPI document with its DEFAULT options (tests/api/openapi.rs makes
// `api.d.ts`, compiles this with `tsc --strict`, and runs it against a live server).
//
// It compiles only if the document is exact where a client feels it: a register call needs no
// more than the login field and password, a PATCH may carry one field, a `select`ed list has
// optional fields, the API-key list has no `key`, answers mark what is always there as required.
// Running it checks that the answers are what the types say.

import createClient from "openapi-fetch";
import type { components, paths } from "./api.js";

type Post = components["schemas"]["posts"];

// Node's `process`, declared here rather than pulling in @types/node for one variable.
declare const process: { env: Record<string, string | undefined> };

const base = process.env.LUCENT_BASE;
if (!base) {
  throw new Error("LUCENT_BASE is not set");
}
const client = createClient<paths>({ baseUrl: base });

function check(condition: boolean, what: string): asserts condition {
  if (!condition) {
    throw new Error(`failed: ${what}`);
  }
}

function bearer(token: string) {
  return { headers: { Authorization: `Bearer ${token}` } };
}

// Sign up with only what an account needs: every other field is optional.
const email = `ts-${Date.now()}@example.com`;
const password = "correct horse battery staple";
const registered = await client.POST("/api/users/register", { body: { email, password } });
check(registered.response.status === 201, `register: ${registered.response.status}`);
check(registered.data !== undefined, "register answers the account and tokens");
const me: string = registered.data.user.id;
const token: string = registered.data.token;
const expires: number = registered.data.exp;
check(registered.data.user.email === email && expires > Date.now() / 1000, "register answer");
check(
  registered.response.headers.get("location") === `/api/users/${me}`,
  "register answers Location",
);
const auth = bearer(token);

// The signed-in account.
const account = await client.GET("/api/users/me", auth);
check(account.data?.user.id === me, "me");
const anonymous = await client.GET("/api/users/me");
check(anonymous.response.status === 401, "me needs credentials");
check(anonymous.error?.error.code === "unauthorized", "401 is the error envelope");

// Create, read, change one field, list with `select`.
const created = await client.POST("/api/posts", {
  ...auth,
  body: { title: "Hello", author: me, views: 3 },
});
check(created.response.status === 201 && created.data !== undefined, "create a post");
const post: Post = created.data.doc;
check(post.status === "draft" && post.views === 3 && post.author === me, "defaults applied");
check(created.response.headers.get("location") === `/api/posts/${post.id}`, "Location");
const path = { path: { id: post.id } };
const fetched = await client.GET("/api/posts/{id}", { ...auth, params: path });
check(fetched.data?.doc.title === "Hello", "the author reads the draft");
const patched = await client.PATCH("/api/posts/{id}", {
  ...auth,
  params: path,
  body: { views: 4 },
});
check(patched.data?.doc.views === 4 && patched.data.doc.title === "Hello", "a one-field PATCH");
const invalid = await client.PATCH("/api/posts/{id}", {
  ...auth,
  params: path,
  body: { views: -1 },
});
check(invalid.response.status === 400, "views below its minimum");
check(invalid.error?.error.code === "validation_failed", "validation error");
check(invalid.error.error.details[0]?.field === "views", "the failing field is named");
const listed = await client.GET("/api/posts", {
  ...auth,
  params: { query: { select: "title", sort: "-createdAt", limit: 10 } },
});
check(listed.data !== undefined, "list");
const first = listed.data.docs[0];
check(first !== undefined && first.id === post.id, "the post is listed");
// `select` leaves out what was not asked for; the type says so (`views?`).
const views: number | null | undefined = first.views;
check(first.title === "Hello" && views === undefined, "select cuts the document");

// API keys: the key is shown once; the list never has it.
const made = await client.POST("/api/users/api-keys", {
  ...auth,
  body: { name: "ts client", scopes: ["read"] },
});
check(made.response.status === 201 && made.data !== undefined, "create a key");
const key: string = made.data.apiKey.key;
const keyId: string = made.data.apiKey.id;
check(key.startsWith("lcnt_"), "the whole key");
const byKey = await client.GET("/api/users/me", bearer(key));
check(byKey.data?.user.id === me, "the key acts as its owner");
const readOnly = await client.POST("/api/posts", {
  ...bearer(key),
  body: { title: "By key", author: me },
});
check(readOnly.response.status === 403, "a read key cannot write");
const keys = await client.GET("/api/users/api-keys", auth);
check(keys.data !== undefined, "list keys");
const listedKey = keys.data.apiKeys.find((k) => k.id === keyId);
check(listedKey !== undefined && !("key" in listedKey), "the list has no secret");
const lastUsed: string | null = listedKey.lastUsedAt;
check(lastUsed === null || typeof lastUsed === "string", "lastUsedAt");
const revoked = await client.DELETE("/api/users/api-keys/{id}", {
  ...auth,
  params: { path: { id: keyId } },
});
check(revoked.response.status === 200, "revoke the key");
const afterRevoke = await client.GET("/api/users/me", bearer(key));
check(afterRevoke.response.status === 401, "a revoked key stops working");

// Sessions, refresh, logout.
const sessions = await client.GET("/api/users/sessions", auth);
check(sessions.data?.sessions.some((s) => s.current) === true, "the current session is listed");
const refreshed = await client.POST("/api/users/refresh", {
  body: { refreshToken: registered.data.refreshToken },
});
check(
  refreshed.data !== undefined && refreshed.data.refreshToken !== registered.data.refreshToken,
  `refresh rotates: ${refreshed.response.status}`,
);
const fresh = bearer(refreshed.data.token);
const out = await client.POST("/api/users/logout", fresh);
check(out.data?.message !== undefined, "logout");
const afterLogout = await client.GET("/api/users/me", fresh);
check(afterLogout.response.status === 401, "the session has ended");

console.log("typed client flow: ok");
