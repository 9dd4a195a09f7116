//! The SMTP reply parser and a whole SMTP client session on arbitrary
//! server bytes: banner, EHLO (HELO), STARTTLS, AUTH PLAIN or LOGIN, QUIT.
//! Never a panic or a hang, the password in no form in the transcript, and
//! nothing written but hello, STARTTLS, AUTH (with its base64 answers) and
//! QUIT, whatever the server says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3_probe::wire::Transcript;
use pop3_probe::smtp::{self, reply, Client, HelloName, StartTlsOutcome};
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const USER: &str = "probe";
const PASSWORD: &str = "Fuzz-Secret-9";

fuzz_target!(|data: &[u8]| {
    // The parser alone: whatever it accepts is sane.
    if let Ok(replies) = reply::parse_all(data) {
        for r in &replies {
            assert!((200..=559).contains(&r.code), "code {}", r.code);
            assert!(r.lines.len() <= smtp::MAX_REPLY_LINES);
            assert!(r.lines.iter().all(|l| !l.chars().any(char::is_control)));
            if let Some(e) = r.enhanced {
                assert_eq!(u16::from(e.class), r.code / 100);
            }
            let shown = r.to_string();
            assert!(shown.starts_with(&r.code.to_string()));
            let ext = smtp::Extensions::from_ehlo(r);
            let caps = ext.capabilities(smtp::banner_software(r.first_line()));
            assert!(caps.sasl.iter().all(|m| !m.is_empty()));
        }
    }

    let Some((&mode, server)) = data.split_first() else { return };
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async move {
        let (client_io, mut server_io) = tokio::io::duplex(1 << 16);
        let script = server.to_vec();
        let server_task = tokio::spawn(async move {
            let _ = server_io.write_all(&script).await;
            let _ = server_io.shutdown().await;
            let mut written = Vec::new();
            let _ = server_io.read_to_end(&mut written).await;
            written
        });
        let transcript = Transcript::masking(pop3_probe::sasl::secret_forms(PASSWORD, Some(USER)));
        let password = SecretString::from(PASSWORD.to_string());
        let name = HelloName::new("fuzz.test").unwrap();
        let dialogue = async {
            let client = Client::connect(client_io, transcript.clone()).await.ok()?;
            let mut session = client.hello(&name).await.ok()?;
            if mode & 1 == 1 {
                session = match session.starttls().await.ok()? {
                    StartTlsOutcome::Refused(s, _) => s,
                    StartTlsOutcome::Ready(..) => return None,
                };
            }
            let done = if mode & 2 == 2 {
                session.auth_login(USER, &password).await
            } else {
                session.auth_plain(USER, &password).await
            };
            let _ = done.ok()?.quit_nowait().await;
            Some(())
        };
        // Bounded: a script never makes the client wait forever.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), dialogue).await;
        // The password, its base64, and PLAIN's base64 credentials.
        let forms = pop3_probe::sasl::secret_forms(PASSWORD, Some(USER));
        for line in transcript.lines() {
            for form in &forms {
                assert!(!line.line.contains(form.as_str()), "password in transcript: {}", line.line);
            }
        }
        if let Ok(written) = server_task.await {
            // LOGIN's base64 user name, and the secret forms as SASL answers.
            let mut allowed_answers = forms.clone();
            allowed_answers.push("cHJvYmU=".to_string());
            for line in written.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
                let text = String::from_utf8_lossy(line);
                let text = text.trim_end_matches('\r');
                let verb = text.split(' ').next().unwrap_or("").to_ascii_uppercase();
                assert!(
                    matches!(verb.as_str(), "EHLO" | "HELO" | "STARTTLS" | "AUTH" | "QUIT")
                        || allowed_answers.iter().any(|a| a == text),
                    "sent {text:?}"
                );
            }
        }
    });
});
