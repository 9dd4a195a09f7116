//! PLAIN (RFC 4616): `authzid NUL authcid NUL passwd`, in base64, sent as
//! the initial response or after the first continuation.

use base64::Engine as _;
use secrecy::{ExposeSecret, SecretString};

use crate::wire::command::check_arg;
use crate::wire::BadArgument;

/// The PLAIN message with an empty authzid, in base64. Held as a secret:
/// base64 is not encryption.
pub fn initial_response(user: &str, secret: &SecretString) -> Result<SecretString, BadArgument> {
    check_arg(user, "user name")?;
    // PLAIN separates fields with NUL, so a NUL inside either would shift
    // them; other control characters are legal in a SASL password.
    if secret.expose_secret().is_empty() {
        return Err(BadArgument::Empty { what: "password" });
    }
    if secret.expose_secret().contains('\0') {
        return Err(BadArgument::Control { what: "password" });
    }
    let raw = format!("\0{user}\0{}", secret.expose_secret());
    Ok(SecretString::from(
        base64::engine::general_purpose::STANDARD.encode(raw.as_bytes()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4616_example_and_refusals() {
        let r = initial_response("tim", &SecretString::from("tanstaaftanstaaf".to_string()));
        assert_eq!(r.unwrap().expose_secret(), "AHRpbQB0YW5zdGFhZnRhbnN0YWFm");
        let nul = SecretString::from("a\0b".to_string());
        assert!(initial_response("u", &nul).is_err());
        let pw = SecretString::from("p".to_string());
        assert!(initial_response("", &pw).is_err());
    }
}
