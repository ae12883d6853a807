//! `[server] static_dir`: a folder of files served at `/` beside the API, as PocketBase's
//! `pb_public` is, so a small site and the API it calls share one origin (and so the session
//! cookie and the CSRF origin check work without CORS).
//!
//! Files are served by poem's [`StaticFilesEndpoint`], which resolves `.` and `..` lexically after
//! percent-decoding and refuses any path that leaves the folder. This wrapper adds what Lucent
//! needs around it: `/api` and everything under it is never a file (an unknown API path stays a
//! JSON 404), and a path that is refused for leaving the folder answers 404 like a missing file,
//! so a probe learns nothing about what lies outside.

use std::path::Path;

use poem::endpoint::StaticFilesEndpoint;
use poem::error::StaticFileError;
use poem::http::StatusCode;
use poem::{Endpoint, Request, Response};

/// The files of a folder at `/`: `index.html` for a folder, content types from the file
/// extension (`charset=utf-8` on HTML, CSS and plain text), no directory listings, GET only.
pub struct SiteFiles {
    files: StaticFilesEndpoint,
}

impl SiteFiles {
    pub fn new(dir: &Path) -> Self {
        Self {
            files: StaticFilesEndpoint::new(dir)
                .index_file("index.html")
                .prefer_utf8(true),
        }
    }
}

impl Endpoint for SiteFiles {
    type Output = Response;

    async fn call(&self, request: Request) -> poem::Result<Response> {
        if is_api_path(request.uri().path()) {
            return Err(poem::Error::from_status(StatusCode::NOT_FOUND));
        }
        self.files.call(request).await.map_err(hide_refusals)
    }
}

/// `/api` and everything under it belongs to the API, whatever the folder holds.
fn is_api_path(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// A path outside the folder, or one that does not decode, is a 404 like a missing file.
fn hide_refusals(error: poem::Error) -> poem::Error {
    match error.downcast_ref::<StaticFileError>() {
        Some(StaticFileError::Forbidden(_) | StaticFileError::InvalidPath) => {
            poem::Error::from_status(StatusCode::NOT_FOUND)
        }
        _ => error,
    }
}

#[cfg(test)]
mod tests {
    use super::is_api_path;

    #[test]
    fn api_paths_are_never_files() {
        for api in ["/api", "/api/", "/api/x"] {
            assert!(is_api_path(api), "{api}");
        }
        for site in ["/", "/apis", "/login.html", "/docs/api/x", "/api.html"] {
            assert!(!is_api_path(site), "{site}");
        }
    }
}
