//! A whole client session driven by arbitrary server bytes: greeting,
//! CAPA, STLS, each login method, STAT, QUIT. Never a panic or a hang, the
//! password never in the transcript, and no mailbox-changing command
//! written, whatever the server says.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pop3_probe::pop3::{Client, StlsOutcome};
use pop3_probe::wire::Transcript;
use secrecy::SecretString;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PASSWORD: &str = "Fuzz-Secret-9";

fuzz_target!(|data: &[u8]| {
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
        let transcript = Transcript::masking(pop3_probe::sasl::secret_forms(PASSWORD, Some("probe")));
        let password = SecretString::from(PASSWORD.to_string());
        let dialogue = async {
            let mut client = Client::connect(client_io, transcript.clone()).await.ok()?;
            if mode & 1 == 1 {
                let _ = client.capa().await;
            }
            if mode & 2 == 2 {
                client = match client.stls().await.ok()? {
                    StlsOutcome::Refused(c, _) => c,
                    StlsOutcome::Ready(..) => return None,
                };
            }
            let login = match mode % 3 {
                0 => client.login_user("probe", &password).await,
                1 => client.login_apop("probe", &password).await,
                _ => client.login_plain("probe", &password).await,
            };
            let mut session = login.ok()?;
            let _ = session.stat().await;
            let _ = session.quit_nowait().await;
            Some(())
        };
        // Bounded: a script never makes the client wait forever.
        let _ = tokio::time::timeout(std::time::Duration::from_secs(2), dialogue).await;
        for line in transcript.lines() {
            assert!(!line.line.contains(PASSWORD), "password in transcript: {}", line.line);
        }
        if let Ok(written) = server_task.await {
            for line in written.split(|&b| b == b'\n') {
                let verb: Vec<u8> = line.iter().take_while(|&&b| b != b' ' && b != b'\r').map(u8::to_ascii_uppercase).collect();
                assert!(
                    !matches!(verb.as_slice(), b"DELE" | b"RETR" | b"TOP" | b"RSET"),
                    "sent {:?}",
                    String::from_utf8_lossy(line)
                );
            }
        }
    });
});
