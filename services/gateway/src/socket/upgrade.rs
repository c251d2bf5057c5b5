//! The WebSocket handshake, served outside the HTTP/1 dispatcher.
//!
//! actix-http hands every request with `Upgrade: websocket` (whatever its
//! path) to this service, with the connection's framed I/O. After the `101`
//! the HTTP codec and both of its 8 KiB buffers are dropped, and the socket
//! goes to a [`conn::run`] task of its own: the dispatcher and its
//! per-connection task end with the handshake.

use std::sync::Arc;

use actix::Actor as _;
use actix_codec::{Framed, FramedParts};
use actix_http::body::{BodySize, MessageBody as _};
use actix_http::{h1, ws, ConnectionType, Method, Request, Response};
use actix_web::ResponseError as _;
use bytes::BytesMut;
use futures_util::SinkExt as _;
use tokio::net::TcpStream;

use chat_shared::ErrorCode;

use super::conn;
use crate::http::{admit, refuse, ApiError};
use crate::node::Node;
use crate::outbox::Outbox;
use crate::session::WsSession;

/// Answers one upgrade request: the session's `101` and its connection
/// task, or an HTTP error in the same JSON shape as every other route.
///
/// # Errors
/// Only a socket that fails while the answer is written.
pub async fn accept(
    node: Arc<Node>,
    req: Request,
    mut framed: Framed<TcpStream, h1::Codec>,
) -> Result<(), actix_web::Error> {
    let admitted = match (req.path(), req.method()) {
        ("/ws", &Method::GET) => admit(&node, req.head(), req.peer_addr()).await,
        ("/ws", method) => Err(ApiError::new(ErrorCode::MethodNotAllowed, format!("{method} is not allowed on /ws"))),
        (path, method) => Err(ApiError::new(ErrorCode::NotFound, format!("no route for {method} {path}"))),
    };
    let admitted = match admitted {
        Ok(admitted) => admitted,
        Err(err) => return respond_error(&mut framed, &err).await,
    };
    let response = match ws::handshake(req.head()) {
        Ok(mut response) => response.message_body(())?,
        Err(err) => {
            let _ = node.engine.presence.release(&admitted.info).await;
            let err = ApiError::new(ErrorCode::BadRequest, format!("expected a WebSocket upgrade: {err}"));
            return respond_error(&mut framed, &refuse(&node, err)).await;
        }
    };
    if let Err(err) = framed.send(h1::Message::Item((response, BodySize::None))).await {
        // The client left during its handshake: nothing was set up yet but
        // its presence.
        let _ = node.engine.presence.release(&admitted.info).await;
        return Err(err.into());
    }
    let FramedParts { io, read_buf, .. } = framed.into_parts();
    // Keep what the client sent after its handshake, in a buffer of its size
    // (the dispatcher's is 8 KiB, and goes now).
    let read_buf = if read_buf.is_empty() { BytesMut::new() } else { BytesMut::from(&read_buf[..]) };
    let limits = &node.settings.gateway.limits;
    let outbox = Arc::new(Outbox::new(limits.max_outbox_bytes));
    let max_frame_bytes = limits.max_frame_bytes;
    tracing::debug!(session = %admitted.info.session, user = %admitted.info.user.id, ip = ?admitted.info.ip, "connection opened");
    let session = {
        let outbox = outbox.clone();
        WsSession::new(node, admitted.info, admitted.grant, outbox, admitted.permit).start()
    };
    actix_rt::spawn(conn::run(io, read_buf, outbox, session, max_frame_bytes));
    Ok(())
}

/// Writes an error response and ends the connection.
async fn respond_error(framed: &mut Framed<TcpStream, h1::Codec>, err: &ApiError) -> Result<(), actix_web::Error> {
    let (head, body) = err.error_response().into_parts();
    let body = body.try_into_bytes().unwrap_or_default();
    let mut head: Response<()> = head.into();
    head.head_mut().set_connection_type(ConnectionType::Close);
    // Head and body in one write: a WebSocket client reads the refusal's
    // body from what arrives with its head.
    framed.feed(h1::Message::Item((head, BodySize::Sized(body.len() as u64)))).await?;
    framed.feed(h1::Message::Chunk(Some(body))).await?;
    framed.send(h1::Message::Chunk(None)).await?;
    Ok(())
}
