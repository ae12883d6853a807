// Must NOT compile (tests/api/types.rs): "archived" is not one of the status options.
import type { PostsCreate } from "./lucent-types";

export const post: PostsCreate = { title: "Hello", status: "archived" };
