//! One profile per monitor kind: its defaults (TLS mode, port by TLS mode,
//! login), the kind-specific fields it accepts, the login methods it
//! allows and the URL schemes that name it. Config merging, `check`'s URL
//! and flag handling, discover's proposals and the JSON Schema all read
//! this one table, so a new kind (or a new login method) is one entry here
//! rather than match arms in four modules.

use crate::probe::{AuthMethod, Kind, TlsMode};

/// POP3 in plaintext (STLS upgrades it) and with implicit TLS.
pub const POP3_PORT: u16 = 110;
pub const POP3S_PORT: u16 = 995;

/// Where a monitor's port comes from when it does not name one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRule {
    /// One port for implicit TLS, another for every other mode.
    ByTls { implicit: u16, other: u16 },
    /// No default: the monitor must say (a TCP check of what?).
    Required,
    /// The kind has no port at all (a DNS check only resolves).
    NoPort,
}

/// How a kind logs in when `auth` is not given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRule {
    /// Always `auto`: the login is the point of the check.
    Always,
    /// `auto` with an account (credentials, a user name), else `none`:
    /// SMTP AUTH is optional.
    WithAccount,
    /// The kind does not log in.
    Never,
}

/// Whether the kind asks the server's capabilities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapabilityRule {
    /// `capabilities` decides; this is its default.
    Optional { default: bool },
    /// Always asked (SMTP's EHLO is half of its greeting).
    Always,
    /// No dialogue, nothing to ask.
    Never,
}

/// A URL scheme that names this kind (`check`'s target).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheme {
    pub name: &'static str,
    pub tls: TlsMode,
    /// The port when the URL has none; `None`: the profile's [`PortRule`].
    pub port: Option<u16>,
}

/// Fields of a monitor that only some kinds accept, in the order they are
/// checked (the first misfit is the one reported).
pub const KIND_FIELDS: [&str; 6] = [
    "tls",
    "auth",
    "credentials",
    "ehlo_name",
    "capabilities",
    "port",
];

/// The settings of `defaults` that only kinds with `takes_defaults` read.
pub const INHERITED_FIELDS: [&str; 8] = [
    "tls",
    "port",
    "auth",
    "credentials",
    "capabilities",
    "tls_server_name",
    "allow_plaintext_password",
    "insecure_skip_verify",
];

/// Everything kind-specific about a monitor.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    pub kind: Kind,
    /// The default TLS mode; `None`: the kind does not use TLS (and
    /// refuses a `tls` setting).
    pub tls: Option<TlsMode>,
    pub port: PortRule,
    pub login: LoginRule,
    /// The `auth` values allowed; empty for a kind that does not log in.
    pub auth: &'static [AuthMethod],
    /// Which of [`KIND_FIELDS`] the kind accepts.
    pub fields: &'static [&'static str],
    /// Whether `defaults`' protocol settings (tls, port, auth, credentials,
    /// capabilities, tls_server_name, allow_plaintext_password,
    /// insecure_skip_verify) apply. They were written for POP3: a POP3
    /// server's certificate name or plaintext exception says nothing about
    /// the SMTP server.
    pub takes_defaults: bool,
    pub capabilities: CapabilityRule,
    pub schemes: &'static [Scheme],
    /// Said after "does not apply to a ... monitor", for kinds without a dialogue.
    pub why_not: &'static str,
}

/// The table. The order is the order kinds are listed in messages.
pub const PROFILES: &[Profile] = &[
    Profile {
        kind: Kind::Pop3,
        tls: Some(TlsMode::Implicit),
        port: PortRule::ByTls {
            implicit: POP3S_PORT,
            other: POP3_PORT,
        },
        login: LoginRule::Always,
        auth: &[
            AuthMethod::Auto,
            AuthMethod::Apop,
            AuthMethod::User,
            AuthMethod::SaslPlain,
            AuthMethod::Xoauth2,
            AuthMethod::Oauthbearer,
            AuthMethod::None,
        ],
        fields: &["tls", "auth", "credentials", "capabilities", "port"],
        takes_defaults: true,
        capabilities: CapabilityRule::Optional { default: true },
        schemes: &[
            Scheme {
                name: "pop3",
                tls: TlsMode::StarttlsIfAvailable,
                port: None,
            },
            Scheme {
                name: "pop3s",
                tls: TlsMode::Implicit,
                port: None,
            },
        ],
        why_not: "",
    },
    Profile {
        kind: Kind::Smtp,
        tls: Some(TlsMode::StarttlsIfAvailable),
        port: PortRule::ByTls {
            implicit: 465,
            other: 25,
        },
        login: LoginRule::WithAccount,
        auth: &[
            AuthMethod::Auto,
            AuthMethod::SaslPlain,
            AuthMethod::SaslLogin,
            AuthMethod::Xoauth2,
            AuthMethod::Oauthbearer,
            AuthMethod::None,
        ],
        fields: &[
            "tls",
            "auth",
            "credentials",
            "ehlo_name",
            "capabilities",
            "port",
        ],
        takes_defaults: false,
        capabilities: CapabilityRule::Always,
        schemes: &[
            Scheme {
                name: "smtp",
                tls: TlsMode::StarttlsIfAvailable,
                port: None,
            },
            Scheme {
                name: "submission",
                tls: TlsMode::Starttls,
                port: Some(587),
            },
            Scheme {
                name: "smtps",
                tls: TlsMode::Implicit,
                port: None,
            },
        ],
        why_not: "",
    },
    Profile {
        kind: Kind::Tcp,
        tls: None,
        port: PortRule::Required,
        login: LoginRule::Never,
        auth: &[],
        fields: &["port"],
        takes_defaults: false,
        capabilities: CapabilityRule::Never,
        schemes: &[Scheme {
            name: "tcp",
            tls: TlsMode::None,
            port: None,
        }],
        why_not: " (it only connects)",
    },
    Profile {
        kind: Kind::Dns,
        tls: None,
        port: PortRule::NoPort,
        login: LoginRule::Never,
        auth: &[],
        fields: &[],
        takes_defaults: false,
        capabilities: CapabilityRule::Never,
        schemes: &[Scheme {
            name: "dns",
            tls: TlsMode::None,
            port: None,
        }],
        why_not: " (it only resolves the name)",
    },
    // Two endpoints, not one: its settings are its legs' (`submit` an smtp
    // monitor's, `retrieve` a pop3 monitor's), read by config::roundtrip.
    Profile {
        kind: Kind::Roundtrip,
        tls: None,
        port: PortRule::NoPort,
        login: LoginRule::Never,
        auth: &[],
        fields: &[],
        takes_defaults: false,
        capabilities: CapabilityRule::Never,
        schemes: &[],
        why_not: " (set it in its submit or retrieve side)",
    },
];

/// The scheme a bare `host[:port]` target gets.
pub const DEFAULT_SCHEME: &str = "pop3s";

/// The profile of a kind. Every kind has one (a unit test walks the
/// schema's list of kinds); a kind without one would be a build mistake,
/// and POP3's is the least surprising stand-in.
pub fn of(kind: Kind) -> &'static Profile {
    PROFILES
        .iter()
        .find(|p| p.kind == kind)
        .unwrap_or(&PROFILES[0])
}

/// `a, b or c`.
fn or_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let items: Vec<String> = items.into_iter().map(|i| i.to_string()).collect();
    match items.split_last() {
        None => String::new(),
        Some((last, [])) => last.clone(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
    }
}

impl Profile {
    /// The port when none is given; `Ok(None)`: the kind has no port;
    /// `Err`: the monitor must name one.
    pub fn default_port(&self, tls: TlsMode) -> Result<Option<u16>, String> {
        match self.port {
            PortRule::ByTls { implicit, other } => Ok(Some(if tls == TlsMode::Implicit {
                implicit
            } else {
                other
            })),
            PortRule::Required => Err(format!(
                "a {} monitor needs the port to connect to",
                self.kind
            )),
            PortRule::NoPort => Ok(None),
        }
    }

    pub fn accepts(&self, field: &str) -> bool {
        self.fields.contains(&field)
    }

    pub fn logs_in(&self) -> bool {
        !self.auth.is_empty()
    }

    pub fn uses_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Why `field` (one of [`KIND_FIELDS`]) is refused for this kind.
    pub fn misfit(&self, field: &str) -> String {
        if !self.logs_in() {
            return format!("does not apply to a {} monitor{}", self.kind, self.why_not);
        }
        let owners = PROFILES.iter().filter(|p| p.accepts(field)).map(|p| p.kind);
        format!("applies to {} monitors only", or_list(owners))
    }

    /// The login to use: `requested` when this kind allows it, else the
    /// kind's default (`has_account`: credentials or a user name were
    /// given). `noun` is what the caller calls a monitor ("monitors",
    /// "targets"), for the message.
    pub fn auth(
        &self,
        requested: Option<AuthMethod>,
        has_account: bool,
        noun: &str,
    ) -> Result<AuthMethod, String> {
        let Some(a) = requested else {
            return Ok(match self.login {
                LoginRule::Always => AuthMethod::Auto,
                LoginRule::WithAccount if has_account => AuthMethod::Auto,
                LoginRule::WithAccount | LoginRule::Never => AuthMethod::None,
            });
        };
        if !self.logs_in() {
            return match a {
                AuthMethod::None => Ok(AuthMethod::None),
                _ => Err(format!("a {} check does not log in", self.kind)),
            };
        }
        if self.auth.contains(&a) {
            return Ok(a);
        }
        let owners = PROFILES
            .iter()
            .filter(|p| p.auth.contains(&a))
            .map(|p| p.kind);
        Err(format!(
            "{a} is for {} {noun}; {} uses {}",
            or_list(owners),
            self.kind,
            or_list(self.auth.iter())
        ))
    }

    /// Whether CAPA (or its kind's equivalent) is asked, given the
    /// monitor's own `capabilities` setting.
    pub fn asks_capabilities(&self, setting: Option<bool>) -> bool {
        match self.capabilities {
            CapabilityRule::Optional { default } => setting.unwrap_or(default),
            CapabilityRule::Always => true,
            CapabilityRule::Never => false,
        }
    }

    /// For the schema: `pop3 995 with implicit TLS, else 110`.
    fn port_words(&self) -> String {
        match self.port {
            PortRule::ByTls { implicit, other } => {
                format!("{} {implicit} with `implicit` TLS, else {other}", self.kind)
            }
            PortRule::Required => format!("{} required", self.kind),
            PortRule::NoPort => format!("{} has no port", self.kind),
        }
    }
}

/// What a target URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedUrl {
    pub kind: Kind,
    pub host: String,
    /// 0 for a kind without a port.
    pub port: u16,
    pub user: Option<String>,
    /// The TLS mode the scheme implies.
    pub tls: TlsMode,
}

/// `pop3://, pop3s://, ... or dns://`.
pub fn scheme_list() -> String {
    or_list(
        PROFILES
            .iter()
            .flat_map(|p| p.schemes)
            .map(|s| format!("{}://", s.name)),
    )
}

/// Read a target URL: `scheme://[user@]host[:port]`; a bare `host[:port]`
/// is [`DEFAULT_SCHEME`]. Errors quote the target (control characters
/// made visible) and say what is wrong.
pub fn parse_url(raw: &str) -> Result<ParsedUrl, String> {
    let shown = crate::text::terminal_safe(raw);
    let with_scheme = if raw.contains("://") {
        raw.to_string()
    } else {
        format!("{DEFAULT_SCHEME}://{raw}")
    };
    let url = url::Url::parse(&with_scheme)
        .map_err(|e| format!("target {shown:?} is not a URL ({}): {e}", scheme_list()))?;
    let Some((profile, scheme)) = PROFILES.iter().find_map(|p| {
        p.schemes
            .iter()
            .find(|s| s.name == url.scheme())
            .map(|s| (p, s))
    }) else {
        return Err(format!(
            "target scheme {:?} is not supported: use {}",
            crate::text::terminal_safe(url.scheme()),
            scheme_list()
        ));
    };
    let kind = profile.kind;
    if url.password().is_some() {
        return Err("target: do not put the password in the URL (it is visible in the process list); use --password-env or --password-file".into());
    }
    let host = match url.host() {
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Domain(d)) => d.to_string(),
        None => return Err(format!("target {shown:?} has no host")),
    };
    if url.path() != "" && url.path() != "/" {
        return Err(format!("target {shown:?}: a {kind} URL has no path"));
    }
    let default = match scheme.port {
        Some(p) => Ok(Some(p)),
        None => profile.default_port(scheme.tls),
    };
    let port = match (url.port(), default) {
        (Some(_), Ok(None)) => {
            return Err(format!(
                "target {shown:?}: a {kind} check only resolves the name; it has no port"
            ))
        }
        (Some(p), _) => p,
        (None, Ok(p)) => p.unwrap_or(0),
        (None, Err(_)) => {
            return Err(format!(
                "target {shown:?}: a {kind} check needs the port ({}://host:port)",
                scheme.name
            ))
        }
    };
    if !profile.logs_in() && !url.username().is_empty() {
        return Err(format!(
            "target {shown:?}: a {kind} check does not log in; drop the user name"
        ));
    }
    let user = match url.username() {
        "" => None,
        u => Some(
            percent_encoding::percent_decode_str(u)
                .decode_utf8()
                .map_err(|_| format!("target {shown:?}: user name is not UTF-8"))?
                .into_owned(),
        ),
    };
    Ok(ParsedUrl {
        kind,
        host,
        port,
        user,
        tls: scheme.tls,
    })
}

/// The scope note for a field of `defaults` that only some kinds read.
pub fn defaults_scope() -> String {
    format!(
        "In `defaults`, for {} monitors only.",
        or_list(PROFILES.iter().filter(|p| p.takes_defaults).map(|p| p.kind))
    )
}

/// The schema's words for the kind-specific fields, built from the table
/// so that no kind is documented with another's defaults. `defaults` is
/// whether the field sits in `defaults` (which only some kinds read).
pub fn schema_description(field: &str, defaults: bool) -> Option<String> {
    let scope = |s: String| {
        if defaults {
            format!("{s} {}", defaults_scope())
        } else {
            s
        }
    };
    let accepting = |f: &str| or_list(PROFILES.iter().filter(|p| p.accepts(f)).map(|p| p.kind));
    let text = match field {
        "port" => format!(
            "TCP port. Default by kind: {}.",
            PROFILES
                .iter()
                .map(Profile::port_words)
                .collect::<Vec<_>>()
                .join("; ")
        ),
        "tls" => format!(
            "`implicit` (alias `ssl`), `starttls` (alias `tls`), `starttls-if-available` \
             (alias `tls-if-available`), `none`. For {} monitors. Default: {}.",
            accepting("tls"),
            PROFILES
                .iter()
                .filter_map(|p| p.tls.map(|t| format!("{} `{t}`", p.kind)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "auth" => format!(
            "How to log in. {}. Default: {}.",
            PROFILES
                .iter()
                .filter(|p| p.logs_in())
                .map(|p| format!(
                    "{} allows {}",
                    p.kind,
                    or_list(p.auth.iter().map(|a| format!("`{a}`")))
                ))
                .collect::<Vec<_>>()
                .join("; "),
            PROFILES
                .iter()
                .filter(|p| p.logs_in())
                .map(|p| match p.login {
                    LoginRule::Always => format!("{} `auto`", p.kind),
                    LoginRule::WithAccount => {
                        format!("{} `auto` with `credentials`, else `none`", p.kind)
                    }
                    LoginRule::Never => format!("{} `none`", p.kind),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        "credentials" => format!(
            "Name of an entry in `credentials`. For {} monitors; required when `auth` is not `none`.",
            accepting("credentials")
        ),
        "capabilities" => {
            let optional: Vec<String> = PROFILES
                .iter()
                .filter_map(|p| match p.capabilities {
                    CapabilityRule::Optional { default } => {
                        Some(format!("{} (default {default})", p.kind))
                    }
                    _ => None,
                })
                .collect();
            let always = or_list(
                PROFILES
                    .iter()
                    .filter(|p| p.capabilities == CapabilityRule::Always)
                    .map(|p| p.kind),
            );
            format!(
                "Ask the server's capabilities on every probe (one more round trip), to \
                 alert when it stops offering STLS, a SASL mechanism or APOP: {}. {always} \
                 always asks (EHLO).",
                optional.join(", ")
            )
        }
        "ehlo_name" => format!(
            "The name sent with EHLO ({} monitors). Default: the probe's address as a literal (`[192.0.2.1]`).",
            accepting("ehlo_name")
        ),
        _ => return None,
    };
    Some(scope(text))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind the schema lists has a profile of its own.
    #[test]
    fn every_kind_has_a_profile() {
        let schema = serde_json::to_value(schemars::schema_for!(Kind)).unwrap();
        let names: Vec<String> = schema["enum"]
            .as_array()
            .or_else(|| schema["oneOf"].as_array())
            .unwrap()
            .iter()
            .flat_map(|v| {
                v.as_str().map(|s| vec![s.to_string()]).unwrap_or_else(|| {
                    v["enum"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|s| s.as_str().unwrap().to_string())
                        .collect()
                })
            })
            .collect();
        assert!(names.len() >= 4, "{names:?}");
        for name in names {
            let kind: Kind = serde_json::from_value(serde_json::json!(name)).unwrap();
            assert_eq!(of(kind).kind, kind, "{name} has no profile");
        }
        // Scheme names are unique across kinds.
        let mut schemes: Vec<&str> = PROFILES
            .iter()
            .flat_map(|p| p.schemes)
            .map(|s| s.name)
            .collect();
        let n = schemes.len();
        schemes.sort_unstable();
        schemes.dedup();
        assert_eq!(schemes.len(), n);
    }

    #[test]
    fn logins_follow_the_kind() {
        let pop3 = of(Kind::Pop3);
        let smtp = of(Kind::Smtp);
        let tcp = of(Kind::Tcp);
        assert_eq!(pop3.auth(None, false, "monitors"), Ok(AuthMethod::Auto));
        assert_eq!(smtp.auth(None, false, "monitors"), Ok(AuthMethod::None));
        assert_eq!(smtp.auth(None, true, "monitors"), Ok(AuthMethod::Auto));
        assert_eq!(tcp.auth(None, true, "monitors"), Ok(AuthMethod::None));
        assert_eq!(
            smtp.auth(Some(AuthMethod::Apop), true, "monitors")
                .unwrap_err(),
            "apop is for pop3 monitors; smtp uses auto, sasl-plain, sasl-login, xoauth2, oauthbearer or none"
        );
        assert_eq!(
            pop3.auth(Some(AuthMethod::SaslLogin), true, "targets")
                .unwrap_err(),
            "sasl-login is for smtp targets; pop3 uses auto, apop, user, sasl-plain, xoauth2, oauthbearer or none"
        );
        assert_eq!(
            tcp.auth(Some(AuthMethod::User), true, "targets")
                .unwrap_err(),
            "a tcp check does not log in"
        );
        assert_eq!(pop3.misfit("ehlo_name"), "applies to smtp monitors only");
        assert_eq!(
            of(Kind::Dns).misfit("port"),
            "does not apply to a dns monitor (it only resolves the name)"
        );
    }

    #[test]
    fn urls_name_kind_port_and_tls() {
        let p = |s: &str| parse_url(s).unwrap();
        let u = p("submission://mon@mail.example.com");
        assert_eq!(
            (u.kind, u.port, u.tls, u.user.as_deref()),
            (Kind::Smtp, 587, TlsMode::Starttls, Some("mon"))
        );
        assert_eq!(p("smtps://h").port, 465);
        assert_eq!(p("smtp://h").port, 25);
        assert_eq!(p("pop3://h").port, 110);
        assert_eq!(p("h").port, 995);
        assert_eq!(p("dns://h").port, 0);
        let e = parse_url("imap://h").unwrap_err();
        assert!(e.contains("not supported: use pop3://, pop3s://"), "{e}");
        let e = parse_url("h\u{1b}]0;title\u{7}").unwrap_err();
        assert!(
            e.starts_with("target \"h?]0;title?\" is not a URL"),
            "{e:?}"
        );
        assert!(parse_url("tcp://h").unwrap_err().contains("needs the port"));
    }

    #[test]
    fn the_schema_words_come_from_the_table() {
        let port = schema_description("port", false).unwrap();
        assert!(
            port.contains("pop3 995 with `implicit` TLS, else 110")
                && port.contains("smtp 465 with `implicit` TLS, else 25"),
            "{port}"
        );
        let tls = schema_description("tls", true).unwrap();
        assert!(tls.contains("smtp `starttls-if-available`"), "{tls}");
        assert!(
            tls.ends_with("In `defaults`, for pop3 monitors only."),
            "{tls}"
        );
    }
}
