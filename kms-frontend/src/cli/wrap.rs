//! `kmsctl wrap-key` / `kmsctl unwrap-key`: wrap key material from a file
//! (or stdin) under a KMS key with the server's `POST /wrapKey`, and unwrap
//! it again with `POST /unwrapKey`. The wrapping (AES-KWP, RFC 5649) happens
//! inside hsm-daemon; this side only moves bytes. Output is raw bytes to
//! `-o FILE` or stdout (so the two commands pipe into each other), or the
//! server's JSON (base64 values) with `--json`.

use super::Global;
use super::output::print_json;
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use http::Method;
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Largest input read: a wrapped key of 4096 bytes of material and its
/// header is well under this.
const MAX_INPUT: u64 = 8192;

/// `wrap-key`'s arguments.
#[derive(Debug, clap::Args)]
pub struct WrapArgs {
    /// File holding the key material (1 to 4096 bytes); `-` for stdin.
    pub file: PathBuf,
    /// Key id, ARN or alias of the wrapping KMS key.
    #[arg(long)]
    pub key: String,
    /// Write the wrapped key here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

/// `unwrap-key`'s arguments.
#[derive(Debug, clap::Args)]
pub struct UnwrapArgs {
    /// File holding a wrapped key made by `wrap-key`; `-` for stdin.
    pub file: PathBuf,
    /// The KMS key expected to have wrapped it (checked by the server).
    #[arg(long)]
    pub key: Option<String>,
    /// Write the key material here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

fn read_input(path: &Path) -> Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    let read = if path == Path::new("-") {
        std::io::stdin()
            .take(MAX_INPUT + 1)
            .read_to_end(&mut buf)
            .context("reading stdin")?
    } else {
        std::fs::File::open(path)
            .with_context(|| format!("opening {}", path.display()))?
            .take(MAX_INPUT + 1)
            .read_to_end(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?
    };
    if read as u64 > MAX_INPUT {
        bail!("{} is larger than {MAX_INPUT} bytes", path.display());
    }
    Ok(buf)
}

fn write_output(path: Option<&Path>, bytes: &[u8]) -> Result<()> {
    match path {
        Some(p) => std::fs::write(p, bytes).with_context(|| format!("writing {}", p.display())),
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(bytes)
                .and_then(|()| out.flush())
                .context("writing stdout")
        }
    }
}

async fn post(global: &Global, path: &str, body: &Value) -> Result<Value> {
    let client = global.client()?;
    let body = Zeroizing::new(serde_json::to_vec(body).context("encoding the request")?);
    let reply = client
        .send(
            Method::POST,
            path,
            &[("content-type", "application/json")],
            Bytes::copy_from_slice(&body),
        )
        .await
        .map_err(|e| anyhow!("{}: {}", e.code, e.message))?;
    super::client::decode_reply(reply).map_err(|e| anyhow!("{}: {}", e.code, e.message))
}

fn base64_field(reply: &Value, name: &str) -> Result<Zeroizing<Vec<u8>>> {
    let text = reply
        .get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("the server's reply has no {name}"))?;
    B64.decode(text)
        .map(Zeroizing::new)
        .map_err(|_| anyhow!("the server's {name} is not base64"))
}

/// `kmsctl wrap-key --key KEY FILE|-`.
pub async fn wrap(global: &Global, args: WrapArgs) -> Result<()> {
    let material = read_input(&args.file)?;
    if material.is_empty() {
        bail!(
            "{} is empty: there is no key material to wrap",
            args.file.display()
        );
    }
    let encoded = Zeroizing::new(B64.encode(material.as_slice()));
    let body = json!({ "keyId": args.key, "key": encoded.as_str() });
    let reply = post(global, "/wrapKey", &body).await?;
    if global.json {
        print_json(&reply);
        return Ok(());
    }
    let wrapped = base64_field(&reply, "wrappedKey")?;
    write_output(args.output.as_deref(), &wrapped)
}

/// `kmsctl unwrap-key FILE|-`.
pub async fn unwrap(global: &Global, args: UnwrapArgs) -> Result<()> {
    let wrapped = read_input(&args.file)?;
    let mut body = json!({ "wrappedKey": B64.encode(wrapped.as_slice()) });
    if let Some(key) = &args.key {
        body["keyId"] = Value::String(key.clone());
    }
    let reply = post(global, "/unwrapKey", &body).await?;
    if global.json {
        print_json(&reply);
        return Ok(());
    }
    let material = base64_field(&reply, "key")?;
    write_output(args.output.as_deref(), &material)
}
