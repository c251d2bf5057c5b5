//! The first bytes a file of a type with a signature must start with: an
//! upload that claims `image/png` must be a PNG. Types without one (plain
//! text, `application/octet-stream`) are taken as they come; HTML and SVG
//! are never served inline whatever they hold (see `routes`).

/// How many first bytes [`matches_signature`] needs to decide.
pub const SIGNATURE_BYTES: usize = 12;

/// Whether `head` (the first bytes of a file, at most [`SIGNATURE_BYTES`]
/// needed) is what `content_type` claims; true for types without a signature.
pub fn matches_signature(content_type: &str, head: &[u8]) -> bool {
    match content_type {
        "image/png" => head.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/jpeg" => head.starts_with(b"\xff\xd8\xff"),
        "image/gif" => head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a"),
        "image/webp" => head.len() >= 12 && &head[..4] == b"RIFF" && &head[8..12] == b"WEBP",
        "application/pdf" => head.starts_with(b"%PDF-"),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures() {
        assert!(matches_signature("image/png", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"));
        assert!(!matches_signature("image/png", b"<html><script>"));
        assert!(!matches_signature("image/png", b""));
        assert!(matches_signature("image/jpeg", b"\xff\xd8\xff\xe0"));
        assert!(matches_signature("image/gif", b"GIF89a...."));
        assert!(matches_signature("image/webp", b"RIFF\x10\0\0\0WEBPVP8 "));
        assert!(!matches_signature("image/webp", b"RIFF\x10\0\0\0WAVEfmt "));
        assert!(matches_signature("application/pdf", b"%PDF-1.7"));
        assert!(matches_signature("text/plain", b"anything"));
        assert!(matches_signature("application/octet-stream", b""));
    }
}
