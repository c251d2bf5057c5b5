//! The gateways' client of the history service: room reads for `join`
//! (history and `since` resumes) and for `history` paging.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::value::RawValue;

use chat_shared::protocol::{RoomName, StoredMessage};

use crate::api::window_query;
use crate::store::{Page, Window};

/// The history service could not answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("history.url {0:?} is not an http(s) URL")]
    BadUrl(String),
    #[error("history service: {0}")]
    Request(#[from] reqwest::Error),
    #[error("history service answered {status}: {body}")]
    Status { status: u16, body: String },
    #[error("history service reply is larger than {0} bytes")]
    TooLarge(usize),
    #[error("history service reply is malformed: {0}")]
    Malformed(String),
}

/// See the module documentation.
#[derive(Clone)]
pub struct HistoryClient {
    http: reqwest::Client,
    base: reqwest::Url,
    max_response_bytes: usize,
}

#[derive(Deserialize)]
struct RoomReply {
    seq: u64,
    epoch: String,
    messages: Vec<Box<RawValue>>,
}

#[derive(Deserialize)]
struct SeqOf {
    seq: u64,
}

impl HistoryClient {
    /// `url` is the service's base URL (`http://history:8091`); every request
    /// gives up after `timeout`, and a reply above `max_response_bytes` is refused.
    ///
    /// # Errors
    /// A URL that is not http(s), or an HTTP client that cannot be built.
    pub fn new(url: &str, timeout: Duration, max_response_bytes: usize) -> Result<HistoryClient, ClientError> {
        let base = reqwest::Url::parse(url).map_err(|_| ClientError::BadUrl(url.to_owned()))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ClientError::BadUrl(url.to_owned()));
        }
        let http = reqwest::Client::builder().timeout(timeout).connect_timeout(timeout).build()?;
        Ok(HistoryClient { http, base, max_response_bytes })
    }

    /// A window of the room's history, with its latest seq and epoch.
    ///
    /// # Errors
    /// The service unreachable, slow, failing or answering nonsense.
    pub async fn room(&self, room: &RoomName, window: Window) -> Result<Page, ClientError> {
        let mut url = self.base.clone();
        url.path_segments_mut().map_err(|()| ClientError::BadUrl(self.base.to_string()))?.pop_if_empty().extend([
            "v1",
            "rooms",
            room.as_str(),
            "messages",
        ]);
        url.query_pairs_mut().extend_pairs(window_query(&window));
        let mut response = self.http.get(url).send().await?;
        let status = response.status();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > self.max_response_bytes {
                return Err(ClientError::TooLarge(self.max_response_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        if !status.is_success() {
            let body = String::from_utf8_lossy(&body[..body.len().min(512)]).into_owned();
            return Err(ClientError::Status { status: status.as_u16(), body });
        }
        let reply: RoomReply = serde_json::from_slice(&body).map_err(|err| ClientError::Malformed(err.to_string()))?;
        let messages = reply
            .messages
            .into_iter()
            .map(|json| {
                let SeqOf { seq } =
                    serde_json::from_str(json.get()).map_err(|err| ClientError::Malformed(err.to_string()))?;
                Ok(StoredMessage { seq, json: Arc::from(json) })
            })
            .collect::<Result<Vec<_>, ClientError>>()?;
        Ok(Page { seq: reply.seq, epoch: reply.epoch, messages })
    }
}
