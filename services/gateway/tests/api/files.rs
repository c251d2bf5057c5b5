//! Files: uploads, downloads and attachments (protocol 1.1, "Files"). Each
//! scenario spreads its clients over the gateways it is given: one gateway
//! with the directory store here, three gateways on Redis with a real
//! S3-compatible server (`s3s-fs`) below.

use serde_json::{json, Value};

use crate::helpers::{eventually, spawn_app, TestApp};

/// The smallest PNG: a 1×1 transparent pixel.
pub const PNG: &[u8] = &[
    0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44, 0x52, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0x00, 0x00, 0x00, 0x1f, 0x15, 0xc4, 0x89, 0x00, 0x00, 0x00, 0x0d, 0x49,
    0x44, 0x41, 0x54, 0x78, 0x9c, 0x63, 0x00, 0x01, 0x00, 0x00, 0x05, 0x00, 0x01, 0x0d, 0x0a, 0x2d, 0xb4, 0x00, 0x00,
    0x00, 0x00, 0x49, 0x45, 0x4e, 0x44, 0xae, 0x42, 0x60, 0x82,
];

fn on(apps: &[TestApp], i: usize) -> &TestApp {
    &apps[i % apps.len()]
}

fn code(reply: &Value) -> &str {
    assert_eq!(reply["type"], "error", "{reply}");
    reply["code"].as_str().unwrap_or("")
}

/// Uploads `body` as `user` (anonymous mode) to `room`: the status and JSON body.
pub async fn upload(
    app: &TestApp,
    user: &str,
    room: &str,
    name: &str,
    content_type: &str,
    body: Vec<u8>,
) -> (u16, Value) {
    let url = app.http_url(&format!("/v1/files?room={room}&filename={name}&user={user}"));
    let response =
        reqwest::Client::new().post(url).header("content-type", content_type).body(body).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// Downloads `url` (a file's path) as `user`, with extra headers.
pub async fn download(app: &TestApp, user: &str, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(app.http_url(&format!("{url}?user={user}")));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap()
}

fn header<'a>(response: &'a reqwest::Response, name: &str) -> &'a str {
    response.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// Uploads, downloads (headers, ranges, ETag), the refusals of both, and who
/// may read a file.
pub async fn uploads_and_downloads_across(apps: &[TestApp]) {
    let (status, file) = upload(on(apps, 0), "f-alice", "files", "pixel.png", "image/png", PNG.to_vec()).await;
    assert_eq!(status, 201, "{file}");
    let id = file["id"].as_str().unwrap().to_owned();
    let url = file["url"].as_str().unwrap().to_owned();
    assert_eq!(
        file,
        json!({"id": id, "room": "files", "name": "pixel.png", "size": PNG.len(), "content_type": "image/png", "url": url})
    );
    // Any gateway serves it, to anyone the room allows.
    let got = download(on(apps, 1), "f-bob", &url, &[]).await;
    assert_eq!(got.status().as_u16(), 200);
    assert_eq!(header(&got, "content-type"), "image/png");
    assert_eq!(header(&got, "content-length"), PNG.len().to_string());
    assert_eq!(header(&got, "x-content-type-options"), "nosniff");
    assert!(header(&got, "content-disposition").starts_with("inline"), "{}", header(&got, "content-disposition"));
    assert!(header(&got, "content-disposition").contains("pixel.png"));
    let etag = header(&got, "etag").to_owned();
    assert!(!etag.is_empty());
    assert_eq!(got.bytes().await.unwrap().as_ref(), PNG);
    let again = download(on(apps, 2), "f-bob", &url, &[("if-none-match", &etag)]).await;
    assert_eq!(again.status().as_u16(), 304);

    // A large file (more than one part, on either store), in ranges.
    let big: Vec<u8> = (0..6_000_000u32).map(|i| (i % 251) as u8).collect();
    let (status, doc) =
        upload(on(apps, 2), "f-alice", "files", "data.bin", "application/octet-stream", big.clone()).await;
    assert_eq!(status, 201, "{doc}");
    let doc_url = doc["url"].as_str().unwrap();
    let part = download(on(apps, 0), "f-bob", doc_url, &[("range", "bytes=1000-1999")]).await;
    assert_eq!(part.status().as_u16(), 206);
    assert_eq!(header(&part, "content-range"), format!("bytes 1000-1999/{}", big.len()));
    assert!(header(&part, "content-disposition").starts_with("attachment"), "not an image: a download");
    assert_eq!(part.bytes().await.unwrap().as_ref(), &big[1000..2000]);
    let tail = download(on(apps, 1), "f-bob", doc_url, &[("range", "bytes=-10")]).await;
    assert_eq!(tail.bytes().await.unwrap().as_ref(), &big[big.len() - 10..]);
    let beyond = download(on(apps, 1), "f-bob", doc_url, &[("range", "bytes=6000000-")]).await;
    assert_eq!(beyond.status().as_u16(), 416);
    let whole = download(on(apps, 1), "f-bob", doc_url, &[]).await;
    assert_eq!(whole.bytes().await.unwrap().as_ref(), big.as_slice());

    // Refusals, each with the JSON error body.
    let over = vec![0u8; 10 * 1024 * 1024 + 1];
    for (what, (user, room, name, content_type, body), status, error) in [
        ("over 10 MiB", ("f-alice", "files", "big.bin", "application/octet-stream", over.clone()), 413, "too_large"),
        ("over the limit and of a refused type", ("f-alice", "files", "big.html", "text/html", over), 413, "too_large"),
        ("HTML", ("f-alice", "files", "x.html", "text/html", b"<script>".to_vec()), 415, "unsupported_type"),
        ("SVG", ("f-alice", "files", "x.svg", "image/svg+xml", b"<svg/>".to_vec()), 415, "unsupported_type"),
        (
            "not a PNG",
            ("f-alice", "files", "x.png", "image/png", b"<html><script>alert(1)".to_vec()),
            415,
            "unsupported_type",
        ),
        ("empty", ("f-alice", "files", "x.txt", "text/plain", Vec::new()), 400, "bad_request"),
        ("no user", ("", "files", "x.txt", "text/plain", b"x".to_vec()), 400, "bad_request"),
        ("bad room", ("f-alice", "no%20room", "x.txt", "text/plain", b"x".to_vec()), 400, "bad_request"),
        ("slash in the name", ("f-alice", "files", "a%2Fb.txt", "text/plain", b"x".to_vec()), 400, "bad_request"),
    ] {
        let user = if user.is_empty() { String::new() } else { user.to_owned() };
        let url = if user.is_empty() {
            on(apps, 0).http_url(&format!("/v1/files?room={room}&filename={name}"))
        } else {
            on(apps, 0).http_url(&format!("/v1/files?room={room}&filename={name}&user={user}"))
        };
        let response =
            reqwest::Client::new().post(url).header("content-type", content_type).body(body).send().await.unwrap();
        let got = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        assert_eq!((got, body["error"]["code"].as_str()), (status, Some(error)), "{what}: {body}");
    }
    for bad in [format!("/v1/files/files/{}", "0".repeat(32)), "/v1/files/files/nope".into(), format!("{url}x")] {
        let response = download(on(apps, 0), "f-bob", &bad, &[]).await;
        assert_eq!(response.status().as_u16(), 404, "{bad}");
    }
}

/// `attachments` on `send` and `message`, the refusals, and a deleted
/// message's files.
pub async fn attachments_across(apps: &[TestApp]) {
    let mut alice = on(apps, 0).client("a-alice").await;
    let mut bob = on(apps, 1).client("a-bob").await;
    alice.join("att").await;
    bob.join("att").await;
    let (_, image) = upload(on(apps, 2), "a-alice", "att", "pixel.png", "image/png", PNG.to_vec()).await;
    let (_, notes) = upload(on(apps, 1), "a-alice", "att", "notes.txt", "text/plain", b"hello".to_vec()).await;
    let ids = [image["id"].clone(), notes["id"].clone()];
    let ack = alice.request(json!({"type": "send", "room": "att", "attachments": ids})).await;
    assert_eq!(ack["type"], "ack", "no text is fine with files: {ack}");
    let message = bob.recv_type("message").await;
    assert_eq!(message["text"], "", "a message with files and no text carries an empty text");
    let strip = |f: &Value| json!({"id": f["id"], "name": f["name"], "size": f["size"], "content_type": f["content_type"], "url": f["url"]});
    assert_eq!(message["attachments"], json!([strip(&image), strip(&notes)]));
    let history = bob.request(json!({"type": "history", "room": "att"})).await;
    assert_eq!(history["messages"][0], message, "the history holds it as delivered");

    // Refusals: nothing stored.
    let (_, spare) = upload(on(apps, 0), "a-alice", "att", "spare.txt", "text/plain", b"spare".to_vec()).await;
    let (_, elsewhere) = upload(on(apps, 0), "a-alice", "other", "x.txt", "text/plain", b"x".to_vec()).await;
    let (_, bobs) = upload(on(apps, 0), "a-bob", "att", "bob.txt", "text/plain", b"bob".to_vec()).await;
    for (attachments, error) in [
        (json!([image["id"]]), "bad_request"), // already on a message
        (json!(["not-a-file-id"]), "not_found"),
        (json!(["0".repeat(32)]), "not_found"),  // unknown
        (json!([elsewhere["id"]]), "not_found"), // another room's
        (json!([bobs["id"]]), "not_found"),      // another user's
        (json!([]), "bad_request"),
        (json!([spare["id"], spare["id"]]), "bad_request"),
        (json!(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k"]), "bad_request"),
        (json!("x"), "bad_request"),
        (Value::Null, "bad_request"), // no text and no files
    ] {
        let reply = if attachments.is_null() {
            alice.request(json!({"type": "send", "room": "att"})).await
        } else {
            alice.request(json!({"type": "send", "room": "att", "text": "t", "attachments": attachments})).await
        };
        assert_eq!(code(&reply), error, "{attachments}");
    }
    let dm = alice.request(json!({"type": "dm", "to": "a-bob", "text": "x", "attachments": [spare["id"]]})).await;
    assert_eq!(code(&dm), "bad_request", "DMs take no attachments");
    // The spare, untouched by the refusals, can still go on a message, once.
    let ack = alice
        .request(
            json!({"type": "send", "room": "att", "text": "spare", "attachments": [spare["id"]], "client_id": "k1"}),
        )
        .await;
    assert_eq!(ack["type"], "ack", "{ack}");
    let repeat = alice
        .request(
            json!({"type": "send", "room": "att", "text": "spare", "attachments": [spare["id"]], "client_id": "k1"}),
        )
        .await;
    assert_eq!(repeat["seq"], ack["seq"], "a repeated client_id gets the first ack: {repeat}");
    let history = bob.request(json!({"type": "history", "room": "att"})).await;
    assert_eq!(history["messages"].as_array().map(Vec::len), Some(2), "the refusals stored nothing");

    // A deleted message's files answer 404 from its ack on.
    let image_url = image["url"].as_str().unwrap();
    assert_eq!(download(on(apps, 1), "a-bob", image_url, &[]).await.status().as_u16(), 200);
    let deleted = alice.request(json!({"type": "delete", "room": "att", "target": message["seq"]})).await;
    assert_eq!(deleted["type"], "ack", "{deleted}");
    for app in apps {
        assert_eq!(download(app, "a-bob", image_url, &[]).await.status().as_u16(), 404);
        assert_eq!(download(app, "a-bob", notes["url"].as_str().unwrap(), &[]).await.status().as_u16(), 404);
    }
    let history = bob.request(json!({"type": "history", "room": "att"})).await;
    let first = &history["messages"][0];
    assert_eq!((first.get("attachments"), first.get("text"), &first["deleted"]), (None, None, &json!(true)), "{first}");
    // A moderator's delete too.
    let (status, _) = moderate(on(apps, 2), "att", ack["seq"].as_u64().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(download(on(apps, 0), "a-bob", spare["url"].as_str().unwrap(), &[]).await.status().as_u16(), 404);
    drop(bob);
}

async fn moderate(app: &TestApp, room: &str, seq: u64) -> (u16, Value) {
    let response = reqwest::Client::new()
        .delete(app.http_url(&format!("/v1/rooms/{room}/messages/{seq}")))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// An upload no message refers to is removed after `unreferenced_ttl_ms`.
pub async fn unreferenced_uploads_go(apps: &[TestApp]) -> String {
    let (status, file) = upload(on(apps, 0), "l-alice", "life", "old.txt", "text/plain", b"old".to_vec()).await;
    assert_eq!(status, 201);
    let url = file["url"].as_str().unwrap().to_owned();
    assert_eq!(download(on(apps, 1), "l-alice", &url, &[]).await.status().as_u16(), 200);
    eventually("the unreferenced upload to go", || async {
        download(on(apps, 2), "l-alice", &url, &[]).await.status().as_u16() == 404
    })
    .await;
    file["id"].as_str().unwrap().to_owned()
}

pub fn settings(s: &mut gateway::Settings) {
    s.gateway.limits.messages_per_second = 1_000;
    s.gateway.admin.api_key = Some("k".into());
    s.gateway.files.unreferenced_ttl_ms = 1_500;
    s.gateway.files.sweep_interval_ms = 200;
}

#[tokio::test]
async fn uploads_and_downloads_on_one_gateway() {
    let app = spawn_app(settings);
    uploads_and_downloads_across(std::slice::from_ref(&app)).await;
}

#[tokio::test]
async fn attachments_on_one_gateway() {
    let app = spawn_app(settings);
    attachments_across(std::slice::from_ref(&app)).await;
}

#[tokio::test]
async fn unreferenced_uploads_go_after_their_time_on_one_gateway() {
    let app = spawn_app(settings);
    let directory = std::path::PathBuf::from(&app.node.settings.gateway.files.directory);
    let id = unreferenced_uploads_go(std::slice::from_ref(&app)).await;
    let on_disk = directory.join("files/life").join(&id);
    eventually("its bytes to go", || async { !on_disk.exists() }).await;
}

#[tokio::test]
async fn uploads_need_a_room_the_token_allows() {
    use jsonwebtoken::{Algorithm, EncodingKey};
    let secret = "files-secret-0123456789";
    let app = spawn_app(|s| {
        s.cluster.auth.mode = gateway::settings::AuthMode::Jwt;
        s.cluster.auth.hs256_secret = Some(secret.into());
    });
    let claims = json!({"sub": "erin", "exp": crate::helpers::now_secs() + 600, "rooms": ["team-*"]});
    let token = crate::helpers::sign(&claims, Algorithm::HS256, &EncodingKey::from_secret(secret.as_bytes()));
    let post = |query: String, bearer: Option<String>| {
        let mut request = reqwest::Client::new().post(app.http_url(&format!("/v1/files?{query}"))).body("hi");
        if let Some(token) = bearer {
            request = request.bearer_auth(token);
        }
        async move { request.header("content-type", "text/plain").send().await.unwrap() }
    };
    assert_eq!(post("room=team-a&filename=a.txt".into(), None).await.status().as_u16(), 401);
    assert_eq!(post("room=team-a&filename=a.txt&token=bad".into(), None).await.status().as_u16(), 401);
    assert_eq!(post("room=lobby&filename=a.txt".into(), Some(token.clone())).await.status().as_u16(), 403);
    let created = post("room=team-a&filename=a.txt".into(), Some(token.clone())).await;
    assert_eq!(created.status().as_u16(), 201);
    let file: Value = created.json().await.unwrap();
    let url = app.http_url(file["url"].as_str().unwrap());
    let other = crate::helpers::sign(
        &json!({"sub": "finn", "exp": crate::helpers::now_secs() + 600, "rooms": ["lobby"]}),
        Algorithm::HS256,
        &EncodingKey::from_secret(secret.as_bytes()),
    );
    let refused = reqwest::Client::new().get(&url).bearer_auth(other).send().await.unwrap();
    assert_eq!(refused.status().as_u16(), 403, "a user the room does not allow");
    let fine = reqwest::Client::new().get(format!("{url}?token={token}")).send().await.unwrap();
    assert_eq!(fine.text().await.unwrap(), "hi");
    assert_eq!(reqwest::get(&url).await.unwrap().status().as_u16(), 401);
}

/// The same scenarios across three gateways on Redis, the files in a real
/// S3-compatible server.
mod cluster {
    use super::*;
    use crate::helpers::{spawn_cluster, wait_ready, RedisCluster, RedisServer};
    use test_support::{S3Server, S3_ACCESS_KEY, S3_SECRET_KEY};

    /// Gateways on the S3 store, with their credentials in a file (as a
    /// mounted Secret gives them).
    fn on_s3<'a>(s3: &'a S3Server, spool: &'a std::path::Path) -> impl Fn(&mut gateway::Settings) + 'a {
        let credentials = crate::helpers::fresh_dir("chat-s3-credentials").join("credentials");
        std::fs::write(
            &credentials,
            format!("AWS_ACCESS_KEY_ID={S3_ACCESS_KEY}\nAWS_SECRET_ACCESS_KEY={S3_SECRET_KEY}\n"),
        )
        .expect("a credentials file");
        move |s| {
            settings(s);
            s.gateway.files.store = gateway::settings::FileStoreKind::S3;
            s.gateway.files.s3.endpoint = s3.endpoint();
            s.gateway.files.s3.bucket = s3.bucket.clone();
            s.gateway.files.s3.allow_http = true;
            s.gateway.files.s3.credentials_file = Some(credentials.display().to_string());
            s.gateway.files.spool_directory = spool.display().to_string();
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_across_three_gateways_on_standalone_redis_and_s3() {
        let redis = RedisServer::start();
        let s3 = S3Server::start();
        let spool = crate::helpers::fresh_dir("chat-spool");
        let apps = spawn_cluster(3, &redis.url(), on_s3(&s3, &spool));
        wait_ready(&apps).await;
        uploads_and_downloads_across(&apps).await;
        attachments_across(&apps).await;
        // The bytes are in the S3 server, and go with the file.
        let (_, file) = upload(&apps[0], "s3-alice", "life", "kept.txt", "text/plain", b"kept".to_vec()).await;
        let id = file["id"].as_str().unwrap().to_owned();
        assert!(s3.objects().iter().any(|key| key.ends_with(&id)), "in the store: {:?}", s3.objects());
        unreferenced_uploads_go(&apps).await;
        eventually("its object to go from the store", || async { !s3.objects().iter().any(|key| key.ends_with(&id)) })
            .await;
        let left: Vec<_> = std::fs::read_dir(&spool).unwrap().collect();
        assert!(left.is_empty(), "uploads leave nothing spooled, refused ones included: {left:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn files_across_three_gateways_on_a_redis_cluster_and_s3() {
        let cluster = RedisCluster::start();
        let s3 = S3Server::start();
        let spool = crate::helpers::fresh_dir("chat-spool");
        let apps = spawn_cluster(3, &cluster.url(), on_s3(&s3, &spool));
        wait_ready(&apps).await;
        uploads_and_downloads_across(&apps).await;
        attachments_across(&apps).await;
        unreferenced_uploads_go(&apps).await;
    }
}

#[tokio::test]
async fn uploads_over_the_users_rate_get_429() {
    let app = spawn_app(|s| s.gateway.files.max_uploads_per_minute = 2);
    for _ in 0..2 {
        assert_eq!(upload(&app, "r-alice", "rate", "a.txt", "text/plain", b"a".to_vec()).await.0, 201);
    }
    let (status, body) = upload(&app, "r-alice", "rate", "a.txt", "text/plain", b"a".to_vec()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (429, Some("rate_limited")), "{body}");
    assert_eq!(upload(&app, "r-bob", "rate", "b.txt", "text/plain", b"b".to_vec()).await.0, 201, "per user");
}
