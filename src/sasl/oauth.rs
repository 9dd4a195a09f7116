//! The two OAuth2 SASL mechanisms: XOAUTH2 (Google's, also Microsoft's for
//! POP, IMAP and SMTP) and OAUTHBEARER (RFC 7628). Pure: they turn a user
//! and a bearer token into the client response, show it masked, and read
//! the error challenge a server sends when it refuses a token. POP3 and
//! SMTP send what these build.
//!
//! The two layouts differ in ways that are easy to get wrong (curl once
//! sent OAUTHBEARER in XOAUTH2's layout), so the tests pin every byte:
//! - XOAUTH2: `user=` U `\x01` `auth=Bearer ` T `\x01\x01`
//! - OAUTHBEARER: gs2 header `n,a=` U `,` then `\x01`, then `host=` H
//!   `\x01` `port=` P `\x01` `auth=Bearer ` T `\x01\x01`

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;

use crate::wire::Command;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::STANDARD;

/// Which OAuth2 mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum OauthMechanism {
    XOauth2,
    OauthBearer,
}

impl OauthMechanism {
    /// The name in `AUTH <name>`, CAPA's `SASL` line and EHLO's `AUTH`.
    pub fn name(self) -> &'static str {
        self.mechanism().as_str()
    }

    /// The same mechanism in the shared list.
    pub fn mechanism(self) -> super::Mechanism {
        match self {
            OauthMechanism::XOauth2 => super::Mechanism::XOauth2,
            OauthMechanism::OauthBearer => super::Mechanism::OauthBearer,
        }
    }

    /// The line a client sends to an error challenge (`+ <base64 JSON>`)
    /// so that the server can finish the exchange with its failure reply.
    /// RFC 7628 §3.2.3: OAUTHBEARER answers with a single `%x01` (base64
    /// `AQ==`). Google's and Microsoft's XOAUTH2 pages: an empty response.
    pub fn error_reply(self) -> &'static str {
        match self {
            OauthMechanism::XOauth2 => "",
            OauthMechanism::OauthBearer => "AQ==",
        }
    }
}

/// Why a user or token cannot be put in a client response. Both layouts
/// use `\x01` as the separator, so a value holding a control character
/// would smuggle in fields of its own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MechanismError {
    #[error("the user name contains a control character")]
    BadUser,
    #[error("the access token is not a bearer token (RFC 6750 b64token characters)")]
    BadToken,
    #[error("the host name contains a control character")]
    BadHost,
}

/// RFC 6750 §2.1 b64token: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" /
/// "+" / "/" ) *"="`. Anything else from a token endpoint is refused
/// rather than sent.
pub fn is_bearer_token(token: &str) -> bool {
    let body = token.trim_end_matches('=');
    !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
}

fn check_user(user: &str) -> Result<(), MechanismError> {
    if user.chars().any(char::is_control) {
        return Err(MechanismError::BadUser);
    }
    Ok(())
}

/// RFC 5801 saslname: `,` and `=` are escaped as `=2C` and `=3D`.
fn saslname(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// A client response for one login: the base64 text sent on the wire, and
/// its masked form for transcripts and `--verbose`.
pub struct ClientResponse {
    encoded: SecretString,
    masked: String,
}

impl ClientResponse {
    /// The base64 line to send (without CRLF).
    pub fn encoded(&self) -> &SecretString {
        &self.encoded
    }

    /// The decoded layout with the token replaced by `***` and each
    /// `\x01` shown as `^A`: what a transcript may show.
    pub fn masked(&self) -> &str {
        &self.masked
    }
}

impl std::fmt::Debug for ClientResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientResponse")
            .field("masked", &self.masked)
            .finish_non_exhaustive()
    }
}

fn response(raw: String, token: &str) -> ClientResponse {
    let masked = raw.replace(token, "***").replace('\x01', "^A");
    let encoded = SecretString::from(B64.encode(raw.as_bytes()));
    ClientResponse { encoded, masked }
}

/// XOAUTH2's client response.
pub fn xoauth2(user: &str, token: &SecretString) -> Result<ClientResponse, MechanismError> {
    check_user(user)?;
    let token = token.expose_secret();
    if !is_bearer_token(token) {
        return Err(MechanismError::BadToken);
    }
    Ok(response(
        format!("user={user}\x01auth=Bearer {token}\x01\x01"),
        token,
    ))
}

/// OAUTHBEARER's client response (RFC 7628 §3.1): the gs2 header names the
/// user as authorization identity; `host` and `port` are the server the
/// client believes it talks to.
pub fn oauthbearer(
    user: &str,
    host: &str,
    port: u16,
    token: &SecretString,
) -> Result<ClientResponse, MechanismError> {
    check_user(user)?;
    if host.chars().any(char::is_control) {
        return Err(MechanismError::BadHost);
    }
    let token = token.expose_secret();
    if !is_bearer_token(token) {
        return Err(MechanismError::BadToken);
    }
    Ok(response(
        format!(
            "n,a={},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01",
            saslname(user)
        ),
        token,
    ))
}

/// An OAuth2 client response line, sent after `+` (POP3) or `334`
/// (SMTP). The transcript shows its decoded layout with the token masked.
pub struct OauthResponse<'a>(pub &'a ClientResponse);

impl std::fmt::Display for OauthResponse<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\r\n", self.0.encoded().expose_secret())
    }
}

impl Command for OauthResponse<'_> {
    fn masked(&self) -> String {
        self.0.masked().to_string()
    }
}

/// The client's answer to an OAuth2 error challenge
/// ([`OauthMechanism::error_reply`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OauthErrorReply(pub OauthMechanism);

impl std::fmt::Display for OauthErrorReply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\r\n", self.0.error_reply())
    }
}

impl Command for OauthErrorReply {}

/// The base64 forms a token can take on the wire, longest first: what a
/// probe's scrubbing removes from every text a server sends back.
pub fn secret_forms(token: &str, user: &str, host: &str, port: u16) -> Vec<String> {
    if token.is_empty() {
        return Vec::new();
    }
    let secret = SecretString::from(token.to_string());
    let mut forms = vec![token.to_string(), B64.encode(token)];
    if let Ok(r) = xoauth2(user, &secret) {
        forms.push(r.encoded().expose_secret().to_string());
    }
    if let Ok(r) = oauthbearer(user, host, port, &secret) {
        forms.push(r.encoded().expose_secret().to_string());
    }
    forms.sort_by_key(|f| std::cmp::Reverse(f.len()));
    forms
}

/// The OAuth2 status a server sends in an error challenge (RFC 7628 §3.2.2;
/// Google's XOAUTH2 sends the same JSON with an HTTP-like `status`).
/// Every field is server text: cleaned and capped before it is kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorStatus {
    /// `invalid_token`, `insufficient_scope`, or Google's `401`, `400`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schemes: Option<String>,
}

impl std::fmt::Display for ErrorStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "status={}", self.status)?;
        if let Some(s) = &self.scope {
            write!(f, " scope={s}")?;
        }
        if let Some(s) = &self.schemes {
            write!(f, " schemes={s}")?;
        }
        Ok(())
    }
}

/// Longest a kept field may be: enough for any real status or scope list.
const FIELD_CAP: usize = 200;

fn clean_field(value: &serde_json::Value) -> Option<String> {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let mut text: String = text
        .chars()
        .filter(|c| !c.is_control())
        .collect::<String>()
        .trim()
        .to_string();
    if text.chars().count() > FIELD_CAP {
        text = text.chars().take(FIELD_CAP).collect::<String>() + "…";
    }
    (!text.is_empty()).then_some(text)
}

/// Decode the text after `+ ` in an error challenge. `None` when it is not
/// base64 of a JSON object with a `status` (a server may send an empty
/// `+` or anything at all; the failure reply that follows still counts).
pub fn decode_error_challenge(text: &str) -> Option<ErrorStatus> {
    let text = text.trim();
    // A real status is a few hundred bytes; refuse to decode a flood.
    if text.is_empty() || text.len() > 4096 {
        return None;
    }
    let bytes = B64.decode(text).ok()?;
    let json: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    let object = json.as_object()?;
    Some(ErrorStatus {
        status: clean_field(object.get("status")?)?,
        scope: object.get("scope").and_then(clean_field),
        schemes: object.get("schemes").and_then(clean_field),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(s: &str) -> SecretString {
        SecretString::from(s.to_string())
    }

    fn decoded(r: &ClientResponse) -> Vec<u8> {
        B64.decode(r.encoded().expose_secret()).unwrap()
    }

    #[test]
    fn xoauth2_layout_is_pinned_byte_for_byte() {
        let r = xoauth2(
            "someuser@example.com",
            &secret("ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"),
        )
        .unwrap();
        assert_eq!(
            decoded(&r),
            b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01"
        );
        // Google's XOAUTH2 page gives exactly this base64 for that input.
        assert_eq!(
            r.encoded().expose_secret(),
            "dXNlcj1zb21ldXNlckBleGFtcGxlLmNvbQFhdXRoPUJlYXJlciB5YTI5LnZGOWRmdDRxbVRjMk52YjNSbGNrQmhkSFJoZG1semRHRXVZMjl0Q2cBAQ=="
        );
        assert_eq!(r.masked(), "user=someuser@example.com^Aauth=Bearer ***^A^A");
    }

    #[test]
    fn oauthbearer_layout_is_pinned_byte_for_byte() {
        // RFC 7628 §4.1's example, with its gs2 header and host/port.
        let r = oauthbearer(
            "user@example.com",
            "server.example.com",
            143,
            &secret("vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="),
        )
        .unwrap();
        assert_eq!(
            decoded(&r),
            b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01"
        );
        assert_eq!(
            r.encoded().expose_secret(),
            "bixhPXVzZXJAZXhhbXBsZS5jb20sAWhvc3Q9c2VydmVyLmV4YW1wbGUuY29tAXBvcnQ9MTQzAWF1dGg9QmVhcmVyIHZGOWRmdDRxbVRjMk52YjNSbGNrQmhiSFJoZG1semRHRXVZMjl0Q2c9PQEB"
        );
        assert_eq!(
            r.masked(),
            "n,a=user@example.com,^Ahost=server.example.com^Aport=143^Aauth=Bearer ***^A^A"
        );
    }

    #[test]
    fn the_two_layouts_differ_where_curl_once_confused_them() {
        let t = secret("abc");
        let x = decoded(&xoauth2("u", &t).unwrap());
        let o = decoded(&oauthbearer("u", "h", 995, &t).unwrap());
        assert!(x.starts_with(b"user=u\x01"));
        assert!(o.starts_with(b"n,a=u,\x01"), "gs2 header first, then ^A");
        assert!(!o.windows(5).any(|w| w == b"user="));
    }

    #[test]
    fn authzid_is_escaped_as_a_saslname() {
        let r = oauthbearer("a,b=c", "h", 1, &secret("t")).unwrap();
        assert!(decoded(&r).starts_with(b"n,a=a=2Cb=3Dc,\x01"));
    }

    #[test]
    fn control_characters_and_non_tokens_are_refused() {
        assert_eq!(
            xoauth2("u\x01auth=x", &secret("t")).unwrap_err(),
            MechanismError::BadUser
        );
        for bad in ["", "a b", "tok\x01en", "tok\r\nQUIT", "=abc", "é"] {
            assert_eq!(
                xoauth2("u", &secret(bad)).unwrap_err(),
                MechanismError::BadToken,
                "{bad:?}"
            );
            assert!(oauthbearer("u", "h", 1, &secret(bad)).is_err());
        }
        assert!(oauthbearer("u", "h\x01port=1", 1, &secret("t")).is_err());
        assert!(is_bearer_token("a-b.c_d~e+f/g=="));
    }

    #[test]
    fn debug_shows_only_the_masked_form() {
        let r = xoauth2("u", &secret("Sup3rTok")).unwrap();
        let shown = format!("{r:?}");
        assert!(!shown.contains("Sup3rTok"));
        assert!(!shown.contains(r.encoded().expose_secret()));
    }

    #[test]
    fn command_lines_are_pinned_and_masked() {
        let r = xoauth2("u", &secret("Tok")).unwrap();
        assert_eq!(
            super::super::AuthStart(OauthMechanism::XOauth2.mechanism()).to_string(),
            "AUTH XOAUTH2\r\n"
        );
        assert_eq!(
            super::super::AuthStart(OauthMechanism::OauthBearer.mechanism()).to_string(),
            "AUTH OAUTHBEARER\r\n"
        );
        assert_eq!(
            OauthResponse(&r).to_string(),
            format!("{}\r\n", r.encoded().expose_secret())
        );
        assert_eq!(OauthResponse(&r).masked(), "user=u^Aauth=Bearer ***^A^A");
        assert_eq!(OauthErrorReply(OauthMechanism::XOauth2).to_string(), "\r\n");
        assert_eq!(
            OauthErrorReply(OauthMechanism::OauthBearer).to_string(),
            "AQ==\r\n"
        );
    }

    #[test]
    fn error_replies_follow_each_spec() {
        assert_eq!(OauthMechanism::OauthBearer.error_reply(), "AQ==");
        assert_eq!(B64.decode("AQ==").unwrap(), b"\x01");
        assert_eq!(OauthMechanism::XOauth2.error_reply(), "");
    }

    #[test]
    fn error_challenges_are_decoded() {
        // What Dovecot 2.3 sends for a refused XOAUTH2 / OAUTHBEARER token.
        assert_eq!(
            decode_error_challenge(
                "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiYmVhcmVyIiwic2NvcGUiOiJtYWlsIn0="
            ),
            Some(ErrorStatus {
                status: "401".into(),
                scope: Some("mail".into()),
                schemes: Some("bearer".into())
            })
        );
        let s = decode_error_challenge("eyJzdGF0dXMiOiJpbnZhbGlkX3Rva2VuIn0=").unwrap();
        assert_eq!(s.to_string(), "status=invalid_token");
        // Google sends status as a string; a number is kept too.
        let n = B64.encode(br#"{"status":400,"scope":"https://mail.google.com/"}"#);
        assert_eq!(decode_error_challenge(&n).unwrap().status, "400");
    }

    #[test]
    fn hostile_challenges_are_cleaned_or_ignored() {
        for junk in [
            "",
            "not base64!",
            "AQ==",
            &B64.encode(b"[1,2]"),
            &B64.encode(b"{}"),
        ] {
            assert_eq!(decode_error_challenge(junk), None, "{junk:?}");
        }
        assert_eq!(decode_error_challenge(&"A".repeat(5000)), None);
        let evil = B64.encode(
            serde_json::json!({"status": format!("bad\x1b[31m\r\n{}", "x".repeat(500))})
                .to_string(),
        );
        let s = decode_error_challenge(&evil).unwrap();
        assert!(!s.status.chars().any(char::is_control));
        assert!(s.status.starts_with("bad[31m"));
        assert!(s.status.chars().count() <= FIELD_CAP + 1);
    }

    #[test]
    fn secret_forms_cover_the_token_and_both_encodings() {
        let forms = secret_forms("Tok123", "u", "h", 995);
        let x = xoauth2("u", &secret("Tok123")).unwrap();
        let o = oauthbearer("u", "h", 995, &secret("Tok123")).unwrap();
        for f in [
            "Tok123".to_string(),
            B64.encode("Tok123"),
            x.encoded().expose_secret().to_string(),
            o.encoded().expose_secret().to_string(),
        ] {
            assert!(forms.contains(&f));
        }
        assert!(forms.windows(2).all(|w| w[0].len() >= w[1].len()));
    }
}
