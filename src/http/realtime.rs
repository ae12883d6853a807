//! `GET /api/realtime` (a Server-Sent Events stream) and `POST /api/realtime` (a client's
//! subscriptions), over [`crate::realtime`].

use futures_util::StreamExt;
use poem::http::StatusCode;
use poem::web::Data;
use poem::web::sse::{Event, SSE};
use poem::{IntoResponse, Request, Response, handler};
use serde_json::json;

use super::State;
use super::error::ApiError;
use super::extract::{JsonBody, authenticate};
use crate::accounts::Credentials;
use crate::realtime::{ConnectError, HEARTBEAT, Refusal, SubscribeError};

/// Opens a stream: `event: connect` with the client's id first, then its events, a heartbeat
/// comment every 25 s. 503 at `realtime.max_clients`.
#[handler]
pub async fn stream(state: Data<&State>) -> Response {
    let connection = match state.realtime.connect() {
        Ok(connection) => connection,
        Err(ConnectError::Full) => {
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "too many realtime clients; try again later",
            )
            .into_response();
        }
    };
    let (id, frames, queue, guard) = connection.into_parts();
    let connect = Event::message(json!({ "clientId": &*id }).to_string()).event_type("connect");
    // The guard lives as long as the stream: when the client goes, so does its registration. A
    // client the hub removed (not reading, credentials ended) ends at once, its queue unsent.
    let events = futures_util::stream::unfold(
        (frames, queue, guard),
        |(mut frames, queue, guard)| async move {
            if queue.gone() {
                return None;
            }
            let frame = frames.recv().await?;
            queue.taken(&frame);
            if queue.gone() {
                return None;
            }
            Some((
                Event::message(&*frame.data).event_type(&*frame.event),
                (frames, queue, guard),
            ))
        },
    );
    SSE::new(futures_util::stream::once(async move { connect }).chain(events))
        .keep_alive(HEARTBEAT)
        .into_response()
}

/// Sets a client's subscriptions and binds the credentials of this request to it: 204; 404
/// for an unknown client, 403 for credentials other than those bound first, 400 for a bad body.
#[handler]
pub async fn subscribe(
    request: &Request,
    credentials: Credentials,
    JsonBody(body): JsonBody,
    state: Data<&State>,
) -> Result<Response, ApiError> {
    let principal = authenticate(request, &credentials).await?;
    match state.realtime.subscribe(credentials, principal, body) {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(SubscribeError::UnknownClient) => Err(ApiError::not_found()),
        Err(SubscribeError::OtherCredentials) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this client is bound to other credentials",
        )),
        Err(SubscribeError::Refused(Refusal::BadRequest(message))) => {
            Err(ApiError::bad_request(message))
        }
        Err(SubscribeError::Refused(Refusal::Records(error))) => Err(error.into()),
    }
}
