//! The endpoints of one API path, by method. Unlike poem's `RouteMethod`, it answers a method
//! the path does not have with 405 and an `Allow` header (RFC 9110 §15.5.6), and refuses a query
//! string on every route but the list, which is the only one that takes parameters: an unknown
//! query parameter is a 400 everywhere, never silently ignored.

use poem::http::{Method, StatusCode, header};
use poem::{Endpoint, EndpointExt, IntoEndpoint, IntoResponse, Request, Response};

use super::error::ApiError;

type Handler = poem::endpoint::BoxEndpoint<'static, Response>;

/// What a route does with the query string.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Query {
    /// The handler reads (and checks) it.
    Parameters,
    /// Any parameter is refused before the handler runs.
    None,
}

#[derive(Default)]
pub struct Methods {
    handlers: Vec<(Method, Query, Handler)>,
}

impl Methods {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<E>(mut self, method: Method, query: Query, endpoint: E) -> Self
    where
        E: IntoEndpoint,
        E::Endpoint: 'static,
    {
        let handler = endpoint.into_endpoint().map_to_response().boxed();
        self.handlers.push((method, query, handler));
        self
    }

    pub fn get<E: IntoEndpoint<Endpoint: 'static>>(self, endpoint: E) -> Self {
        self.with(Method::GET, Query::None, endpoint)
    }

    /// A `GET` that reads its own query parameters (a collection list, a document's `expand`).
    pub fn list<E: IntoEndpoint<Endpoint: 'static>>(self, endpoint: E) -> Self {
        self.with(Method::GET, Query::Parameters, endpoint)
    }

    pub fn post<E: IntoEndpoint<Endpoint: 'static>>(self, endpoint: E) -> Self {
        self.with(Method::POST, Query::None, endpoint)
    }

    pub fn patch<E: IntoEndpoint<Endpoint: 'static>>(self, endpoint: E) -> Self {
        self.with(Method::PATCH, Query::None, endpoint)
    }

    pub fn delete<E: IntoEndpoint<Endpoint: 'static>>(self, endpoint: E) -> Self {
        self.with(Method::DELETE, Query::None, endpoint)
    }

    /// The `Allow` value: the methods here, and `HEAD` wherever there is a `GET`.
    fn allow(&self) -> String {
        let mut names: Vec<&str> = self.handlers.iter().map(|(m, ..)| m.as_str()).collect();
        if self.handlers.iter().any(|(m, ..)| *m == Method::GET) {
            names.push(Method::HEAD.as_str());
        }
        names.join(", ")
    }
}

impl Endpoint for Methods {
    type Output = Response;

    async fn call(&self, mut request: Request) -> poem::Result<Response> {
        let head = request.method() == Method::HEAD;
        let wanted = if head {
            Method::GET
        } else {
            request.method().clone()
        };
        let Some((_, query, handler)) = self.handlers.iter().find(|(m, ..)| *m == wanted) else {
            let mut response =
                ApiError::from_status(StatusCode::METHOD_NOT_ALLOWED).into_response();
            if let Ok(value) = header::HeaderValue::from_str(&self.allow()) {
                response.headers_mut().insert(header::ALLOW, value);
            }
            return Ok(response);
        };
        if *query == Query::None && request.uri().query().is_some_and(|q| !q.is_empty()) {
            return Ok(
                ApiError::bad_request("this route takes no query parameters").into_response(),
            );
        }
        if head {
            request.set_method(Method::GET);
        }
        // A handler's error is its answer here, so a HEAD answer loses its body either way.
        let mut response = handler
            .call(request)
            .await
            .unwrap_or_else(|error| ApiError::from(error).into_response());
        if head {
            response.set_body(());
        }
        Ok(response)
    }
}
