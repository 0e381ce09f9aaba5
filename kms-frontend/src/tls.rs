//! The rustls server configuration (aws-lc-rs provider, ALPN `h2` then
//! `http/1.1`).
//!
//! The certificate comes from `[tls]` when configured. Otherwise a
//! development CA and a server certificate for `localhost`, `127.0.0.1` and
//! `::1` are generated once with rcgen into `STATE/tls/` (`ca.pem`,
//! `ca.key`, `server.pem`, `server.key`; keys 0600, directory 0700) and
//! reused on every later start: they are never regenerated while present.
//! Sessions resume with stateless tickets (a reconnecting client skips the
//! full handshake).
//! Clients trust `ca.pem`. Serving connections is left to `server`.

use crate::config::{Config, TlsFiles};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};
use rustls::ServerConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("cannot generate the development certificates: {0}")]
    Generate(#[from] rcgen::Error),
    #[error("rustls refused the certificate or key: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The ready-to-use server config, and the dev CA to print when one is used.
#[derive(Debug)]
pub struct Tls {
    pub config: Arc<ServerConfig>,
    /// `STATE/tls/ca.pem` when the development CA is in use.
    pub dev_ca: Option<PathBuf>,
}

const CA_PEM: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const SERVER_PEM: &str = "server.pem";
const SERVER_KEY: &str = "server.key";

/// Builds the TLS config from `[tls]`, or from the development CA in
/// `state_dir/tls/` (made on first use).
///
/// # Errors
/// [`TlsError`] naming the file or the step that failed.
pub fn load(config: &Config) -> Result<Tls, TlsError> {
    let (cert_path, key_path, dev_ca) = match &config.tls {
        Some(TlsFiles { cert, key }) => (cert.clone(), key.clone(), None),
        None => {
            let dir = config.state_dir.join("tls");
            ensure_dev_ca(&dir)?;
            (
                dir.join(SERVER_PEM),
                dir.join(SERVER_KEY),
                Some(dir.join(CA_PEM)),
            )
        }
    };
    let certs = read_certs(&cert_path)?;
    let key = read_key(&key_path, dev_ca.is_some())?;
    let config = server_config(certs, key)?;
    Ok(Tls {
        config: Arc::new(config),
        dev_ca,
    })
}

/// A rustls `ServerConfig` with the aws-lc-rs provider and ALPN h2, http/1.1.
///
/// # Errors
/// [`TlsError::Rustls`] if the key does not match or is unsupported.
pub fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    // Session resumption: stateless TLS 1.3 tickets (keys rotated by rustls
    // every 6 hours), so a reconnecting client skips the certificate
    // signature and the server keeps no per-session state. TLS 1.2 clients
    // resume through the default in-memory session cache.
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new()?;
    Ok(config)
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Makes the development CA and server certificate unless all four files
/// are already there. A partial set is refused rather than overwritten.
fn ensure_dev_ca(dir: &Path) -> Result<(), TlsError> {
    if dir.exists() {
        let mode = fs::metadata(dir).map_err(io_err(dir))?.permissions().mode();
        if mode & 0o077 != 0 {
            return Err(TlsError::Invalid(format!(
                "{} is accessible to group or others (mode {:o}); chmod 700 it",
                dir.display(),
                mode & 0o777
            )));
        }
    } else {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?;
    }
    let files = [CA_PEM, CA_KEY, SERVER_PEM, SERVER_KEY];
    let present: Vec<&str> = files
        .iter()
        .copied()
        .filter(|f| dir.join(f).exists())
        .collect();
    if present.len() == files.len() {
        return Ok(());
    }
    if !present.is_empty() {
        return Err(TlsError::Invalid(format!(
            "{} holds only {} of ca.pem, ca.key, server.pem, server.key; \
             remove the directory to make a new development CA",
            dir.display(),
            present.join(", ")
        )));
    }
    let generated = generate()?;
    // Keys first, certificates last: a crash leaves a partial set, which is
    // refused above instead of silently half-reused.
    write_new(&dir.join(CA_KEY), generated.ca_key.as_bytes(), 0o600)?;
    write_new(
        &dir.join(SERVER_KEY),
        generated.server_key.as_bytes(),
        0o600,
    )?;
    write_new(
        &dir.join(SERVER_PEM),
        generated.server_pem.as_bytes(),
        0o644,
    )?;
    write_new(&dir.join(CA_PEM), generated.ca_pem.as_bytes(), 0o644)?;
    tracing::info!(dir = %dir.display(), "generated a development CA and server certificate");
    Ok(())
}

struct Generated {
    ca_pem: String,
    ca_key: zeroize::Zeroizing<String>,
    server_pem: String,
    server_key: zeroize::Zeroizing<String>,
}

fn generate() -> Result<Generated, TlsError> {
    let now = time::OffsetDateTime::now_utc();
    let not_before = now - time::Duration::days(1);

    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "hsm-kms development CA");
    ca.distinguished_name = dn;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = not_before;
    ca.not_after = now + time::Duration::days(3650);
    let ca_cert = ca.self_signed(&ca_key)?;
    let ca_key_pem = zeroize::Zeroizing::new(ca_key.serialize_pem());
    let issuer = Issuer::new(ca, ca_key);

    let server_key = KeyPair::generate()?;
    let mut server = CertificateParams::new(Vec::<String>::new())?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, "localhost");
    server.distinguished_name = dn;
    server.subject_alt_names = vec![
        SanType::DnsName("localhost".try_into()?),
        SanType::IpAddress(std::net::IpAddr::from([127, 0, 0, 1])),
        SanType::IpAddress(std::net::IpAddr::from(std::net::Ipv6Addr::LOCALHOST)),
    ];
    server.is_ca = IsCa::NoCa;
    server.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    server.not_before = not_before;
    server.not_after = now + time::Duration::days(825);
    let server_cert = server.signed_by(&server_key, &issuer)?;

    Ok(Generated {
        ca_pem: ca_cert.pem(),
        ca_key: ca_key_pem,
        server_pem: server_cert.pem(),
        server_key: zeroize::Zeroizing::new(server_key.serialize_pem()),
    })
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), TlsError> {
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io_err(path))?;
    f.write_all(bytes).map_err(io_err(path))?;
    f.sync_all().map_err(io_err(path))
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = fs::read(path).map_err(io_err(path))?;
    let certs = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<Vec<_>, _>>()
        .map_err(io_err(path))?;
    if certs.is_empty() {
        return Err(TlsError::Invalid(format!(
            "{}: no PEM certificate found",
            path.display()
        )));
    }
    Ok(certs)
}

/// Reads a PEM private key. A development key must be 0600 (refused
/// otherwise); a configured one only gets a warning.
fn read_key(path: &Path, strict: bool) -> Result<PrivateKeyDer<'static>, TlsError> {
    let mode = fs::metadata(path)
        .map_err(io_err(path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        if strict {
            return Err(TlsError::Invalid(format!(
                "{} is readable by group or others (mode {:o}); chmod 600 it",
                path.display(),
                mode & 0o777
            )));
        }
        tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "TLS key is readable by group or others");
    }
    let pem = zeroize::Zeroizing::new(fs::read(path).map_err(io_err(path))?);
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(io_err(path))?
        .ok_or_else(|| TlsError::Invalid(format!("{}: no PEM private key found", path.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(state: &Path) -> Config {
        let text = format!(
            r#"
listen = "127.0.0.1:0"
state_dir = "{}"
hsm_socket = "/tmp/none.sock"
region = "us-east-1"
account_id = "111122223333"
[[principals]]
arn = "arn:aws:iam::111122223333:user/dev"
access_key_id = "AKIAEXAMPLE"
secret_access_key = "s"
"#,
            state.display()
        );
        Config::parse(&text).expect("config")
    }

    #[test]
    fn dev_ca_is_made_once_with_tight_modes_and_reused() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = config(dir.path());
        let tls = load(&cfg).expect("first start");
        let tls_dir = dir.path().join("tls");
        assert_eq!(tls.dev_ca, Some(tls_dir.join("ca.pem")));
        assert_eq!(
            tls.config.alpn_protocols,
            vec![b"h2".to_vec(), b"http/1.1".to_vec()]
        );
        let mode = |p: &str| {
            fs::metadata(tls_dir.join(p))
                .expect("meta")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(""), 0o700);
        assert_eq!(mode("ca.key"), 0o600);
        assert_eq!(mode("server.key"), 0o600);
        let before = fs::read(tls_dir.join("ca.pem")).expect("ca");
        load(&cfg).expect("second start");
        assert_eq!(fs::read(tls_dir.join("ca.pem")).expect("ca"), before);
    }

    #[test]
    fn partial_dev_dir_is_refused_not_overwritten() {
        let dir = tempfile::tempdir().expect("tmp");
        let cfg = config(dir.path());
        load(&cfg).expect("first start");
        fs::remove_file(dir.path().join("tls/server.pem")).expect("rm");
        let err = load(&cfg).expect_err("partial").to_string();
        assert!(err.contains("remove the directory"), "{err}");
    }

    /// One TLS connection to `addr`, reading the one byte the server sends
    /// (which also takes in the session tickets sent before it).
    async fn connect_once(
        client: &Arc<rustls::ClientConfig>,
        addr: std::net::SocketAddr,
    ) -> Option<rustls::HandshakeKind> {
        use tokio::io::AsyncReadExt;
        let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
        let mut tls = tokio_rustls::TlsConnector::from(Arc::clone(client))
            .connect(name, tcp)
            .await
            .expect("handshake");
        let mut byte = [0u8; 1];
        tls.read_exact(&mut byte).await.expect("read");
        tls.get_ref().1.handshake_kind()
    }

    #[tokio::test]
    async fn a_reconnecting_client_resumes_its_tls_session() {
        use tokio::io::AsyncWriteExt;
        let dir = tempfile::tempdir().expect("tmp");
        let tls = load(&config(dir.path())).expect("tls");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&tls.config));
        let server = tokio::spawn(async move {
            for _ in 0..2 {
                let (tcp, _) = listener.accept().await.expect("accept");
                let mut s = acceptor.accept(tcp).await.expect("server handshake");
                s.write_all(b"x").await.expect("write");
                s.flush().await.expect("flush");
                let _ = s.shutdown().await;
            }
        });
        let mut roots = rustls::RootCertStore::empty();
        let ca = read_certs(tls.dev_ca.as_deref().expect("dev ca")).expect("ca");
        roots.add(ca[0].clone()).expect("root");
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let client = Arc::new(
            rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .expect("versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
        );
        let first = connect_once(&client, addr).await;
        let second = connect_once(&client, addr).await;
        server.await.expect("server");
        assert_eq!(first, Some(rustls::HandshakeKind::Full));
        assert_eq!(second, Some(rustls::HandshakeKind::Resumed));
    }
}
