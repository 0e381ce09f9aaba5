//! Where kmsctl finds its endpoint, region, credentials and trust anchors:
//! resolved the way the aws CLI does. Environment first
//! (`AWS_ENDPOINT_URL_KMS`, `AWS_ENDPOINT_URL`, `AWS_REGION`,
//! `AWS_DEFAULT_REGION`, `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY`
//! (+ `AWS_SESSION_TOKEN`), `AWS_CA_BUNDLE`), then the profile named by
//! `--profile`, `AWS_PROFILE` or `default` in `~/.aws/credentials`
//! (`AWS_SHARED_CREDENTIALS_FILE`) and `~/.aws/config` (`AWS_CONFIG_FILE`,
//! sections `[profile NAME]` / `[default]`). Command-line flags override
//! both. The HTTP client and signing are left to `client`.

use anyhow::{Context, Result, bail};
use secrecy::SecretString;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// Resolved settings for talking to one KMS endpoint.
#[derive(Debug)]
pub struct Settings {
    pub endpoint: String,
    pub region: String,
    pub access_key_id: String,
    /// Redacted in `Debug` by `SecretString`.
    pub secret_access_key: SecretString,
    pub session_token: Option<SecretString>,
    pub ca_bundle: Option<PathBuf>,
}

/// Explicit overrides from the command line.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub profile: Option<String>,
    pub ca_bundle: Option<PathBuf>,
}

/// A lookup of environment variables (a closure so tests need not touch the
/// process environment).
pub type Env<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, empty values treated as unset (as the aws CLI does).
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

impl Settings {
    /// Resolves settings from `overrides`, the environment and the profile files.
    pub fn resolve(overrides: &Overrides, env: Env<'_>) -> Result<Self> {
        let profile = overrides
            .profile
            .clone()
            .or_else(|| env("AWS_PROFILE"))
            .unwrap_or_else(|| "default".to_owned());
        let home = env("HOME").map(PathBuf::from);
        let config_path = env("AWS_CONFIG_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
        let creds_path = env("AWS_SHARED_CREDENTIALS_FILE")
            .map(PathBuf::from)
            .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
        let config_section = if profile == "default" {
            "default".to_owned()
        } else {
            format!("profile {profile}")
        };
        let config = read_section(config_path.as_deref(), &config_section)?;
        let creds = read_section(creds_path.as_deref(), &profile)?;
        let from_files = |key: &str| creds.get(key).or_else(|| config.get(key)).cloned();

        let region = overrides
            .region
            .clone()
            .or_else(|| env("AWS_REGION"))
            .or_else(|| env("AWS_DEFAULT_REGION"))
            .or_else(|| config.get("region").cloned())
            .context("no region: set AWS_REGION or region in ~/.aws/config, or pass --region")?;
        let endpoint = overrides
            .endpoint
            .clone()
            .or_else(|| env("AWS_ENDPOINT_URL_KMS"))
            .or_else(|| env("AWS_ENDPOINT_URL"))
            .or_else(|| config.get("endpoint_url").cloned())
            .unwrap_or_else(|| format!("https://kms.{region}.amazonaws.com"));
        let (access_key_id, secret, token) =
            match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
                (Some(id), Some(secret)) => (id, secret, env("AWS_SESSION_TOKEN")),
                _ => match (
                    from_files("aws_access_key_id"),
                    from_files("aws_secret_access_key"),
                ) {
                    (Some(id), Some(secret)) => (id, secret, from_files("aws_session_token")),
                    _ => bail!(
                        "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or \
                         aws_access_key_id and aws_secret_access_key for profile '{profile}' \
                         in ~/.aws/credentials"
                    ),
                },
            };
        let ca_bundle = overrides
            .ca_bundle
            .clone()
            .or_else(|| env("AWS_CA_BUNDLE").map(PathBuf::from))
            .or_else(|| config.get("ca_bundle").map(PathBuf::from));
        Ok(Self {
            endpoint: endpoint.trim_end_matches('/').to_owned(),
            region,
            access_key_id,
            secret_access_key: SecretString::from(secret),
            session_token: token.map(SecretString::from),
            ca_bundle,
        })
    }
}

/// The `key = value` pairs of `[section]` in an INI-style aws file; a
/// missing file is an empty section.
fn read_section(path: Option<&Path>, section: &str) -> Result<HashMap<String, String>> {
    let Some(path) = path else {
        return Ok(HashMap::new());
    };
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
    };
    Ok(parse_section(&text, section))
}

fn parse_section(text: &str, section: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
            continue;
        }
        if inside && let Some((k, v)) = line.split_once('=') {
            out.insert(k.trim().to_owned(), v.trim().to_owned());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::ExposeSecret;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn environment_wins_and_endpoint_is_trimmed() {
        let env = env_of(&[
            ("AWS_ENDPOINT_URL", "https://127.0.0.1:4599/"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "secret"),
            ("AWS_CA_BUNDLE", "/tmp/ca.pem"),
        ]);
        let s = Settings::resolve(&Overrides::default(), &env).expect("resolve");
        assert_eq!(s.endpoint, "https://127.0.0.1:4599");
        assert_eq!(s.region, "eu-west-1");
        assert_eq!(s.access_key_id, "AKID");
        assert_eq!(s.secret_access_key.expose_secret(), "secret");
        assert_eq!(s.ca_bundle, Some(PathBuf::from("/tmp/ca.pem")));
        assert!(!format!("{s:?}").contains("secret\""));
    }

    #[test]
    fn profile_files_are_read() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("credentials"),
            "[default]\naws_access_key_id = A\naws_secret_access_key = B\n\
             [dev]\naws_access_key_id = DEVID\naws_secret_access_key = DEVSECRET\n",
        )
        .expect("write");
        std::fs::write(
            dir.path().join("config"),
            "[default]\nregion = us-east-1\n[profile dev]\nregion = ap-south-1\n\
             endpoint_url = https://localhost:1\n",
        )
        .expect("write");
        let c = dir.path().join("credentials").display().to_string();
        let k = dir.path().join("config").display().to_string();
        let env = move |name: &str| match name {
            "AWS_SHARED_CREDENTIALS_FILE" => Some(c.clone()),
            "AWS_CONFIG_FILE" => Some(k.clone()),
            "AWS_PROFILE" => Some("dev".to_owned()),
            _ => None,
        };
        let s = Settings::resolve(&Overrides::default(), &env).expect("resolve");
        assert_eq!(s.access_key_id, "DEVID");
        assert_eq!(s.region, "ap-south-1");
        assert_eq!(s.endpoint, "https://localhost:1");
    }

    #[test]
    fn missing_credentials_is_a_clear_error() {
        let env = env_of(&[("AWS_REGION", "us-east-1")]);
        let err = Settings::resolve(&Overrides::default(), &env).expect_err("no creds");
        assert!(err.to_string().contains("no credentials"), "{err}");
    }
}
