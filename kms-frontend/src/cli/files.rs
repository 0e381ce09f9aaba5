//! `kmsctl encrypt` and `kmsctl decrypt`: envelope encryption of files under
//! a KMS key. The data key comes from GenerateDataKey (with the encryption
//! context) and goes back through Decrypt, exactly as the AWS Encryption
//! SDK's KMS keyring does (provider id `aws-kms`, provider info = key ARN),
//! so files interoperate with the SDKs. The default format is the SDK's
//! message format (`esdk`), streamed; `--format json` writes the small JSON
//! envelope of `envelope`. Output goes to a temporary file in the target
//! directory and is renamed into place only once the whole input has been
//! processed and (on decrypt) authenticated; on any error nothing is left.

use super::Global;
use super::client::KmsClient;
use super::envelope;
use super::esdk::header::{EncryptedDataKey, Header};
use super::esdk::{self, keys, stream};
use anyhow::{Context, Result, anyhow, bail};
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

const IO_BUF: usize = 1 << 20;
/// Files at least this large get a progress bar (on a terminal).
const PROGRESS_MIN: u64 = 16 << 20;

/// Output format of `encrypt`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// AWS Encryption SDK message format v2 (streamed, any size).
    Esdk,
    /// A small JSON envelope (whole payload in memory).
    Json,
}

/// Arguments of `kmsctl encrypt`.
#[derive(Debug, clap::Args)]
pub struct EncryptArgs {
    /// The file to encrypt.
    pub file: PathBuf,
    /// KMS key id, ARN, alias name or alias ARN.
    #[arg(long)]
    pub key: String,
    /// Encryption context pair (repeatable).
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// Output file (default FILE.encrypted).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "esdk")]
    pub format: Format,
    /// Frame length of the message format.
    #[arg(long, default_value_t = esdk::DEFAULT_FRAME_LEN)]
    pub frame_length: u32,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `kmsctl decrypt`.
#[derive(Debug, clap::Args)]
pub struct DecryptArgs {
    /// The file to decrypt (either format; detected).
    pub file: PathBuf,
    /// Required encryption context pair (repeatable): decryption fails
    /// unless the message's context has each of them.
    #[arg(long = "context", value_name = "KEY=VALUE")]
    pub context: Vec<String>,
    /// Output file (default FILE without .encrypted, or FILE.decrypted).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Replace the output file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Parses `k=v` pairs; refuses duplicates and the reserved prefix.
pub fn parse_context(pairs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for pair in pairs {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| anyhow!("--context {pair:?} is not KEY=VALUE"))?;
        if k.is_empty() {
            bail!("--context {pair:?} has an empty key");
        }
        if k.starts_with(esdk::RESERVED_PREFIX) {
            bail!(
                "--context key {k:?} uses the reserved prefix {}",
                esdk::RESERVED_PREFIX
            );
        }
        if out.insert(k.to_owned(), v.to_owned()).is_some() {
            bail!("--context key {k:?} given twice");
        }
    }
    Ok(out)
}

fn default_output(input: &Path, encrypt: bool) -> PathBuf {
    let name = input.as_os_str().to_string_lossy();
    if encrypt {
        PathBuf::from(format!("{name}.encrypted"))
    } else if let Some(stripped) = name.strip_suffix(".encrypted") {
        PathBuf::from(stripped)
    } else {
        PathBuf::from(format!("{name}.decrypted"))
    }
}

/// A temporary file next to `target`, renamed onto it by [`Staged::commit`]
/// and deleted if dropped before.
struct Staged {
    tmp: tempfile::NamedTempFile,
    target: PathBuf,
}

impl Staged {
    fn new(target: &Path, force: bool) -> Result<Self> {
        if !force && target.exists() {
            bail!("{} exists (use --force to replace it)", target.display());
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = tempfile::Builder::new()
            .prefix(".kmsctl-")
            .tempfile_in(&dir)
            .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
        Ok(Self {
            tmp,
            target: target.to_path_buf(),
        })
    }

    fn commit(self) -> Result<()> {
        self.tmp
            .as_file()
            .sync_all()
            .context("syncing the output")?;
        self.tmp
            .persist(&self.target)
            .map_err(|e| anyhow!("renaming onto {}: {}", self.target.display(), e.error))?;
        Ok(())
    }
}

fn progress_bar(total: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if total < PROGRESS_MIN || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// A 32-byte data key from a base64 `Plaintext` field, zeroized on drop.
pub fn data_key_from(reply: &Value) -> Result<Zeroizing<[u8; 32]>> {
    let b64 = reply
        .get("Plaintext")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("KMS reply has no Plaintext"))?;
    let bytes = Zeroizing::new(B64.decode(b64).context("KMS Plaintext is not base64")?);
    let mut key = Zeroizing::new([0u8; 32]);
    if bytes.len() != 32 {
        bail!("KMS returned a {}-byte data key, expected 32", bytes.len());
    }
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// GenerateDataKey under `key` for `context`: (plaintext, blob, key ARN).
pub async fn generate_data_key(
    client: &KmsClient,
    key: &str,
    context: &BTreeMap<String, String>,
) -> Result<(Zeroizing<[u8; 32]>, Vec<u8>, String)> {
    let mut req = json!({"KeyId": key, "NumberOfBytes": 32});
    if !context.is_empty() {
        req["EncryptionContext"] = json!(context);
    }
    let reply = client.call("GenerateDataKey", &req).await?;
    let plain = data_key_from(&reply)?;
    let blob = reply
        .get("CiphertextBlob")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("KMS reply has no CiphertextBlob"))?;
    let blob = B64.decode(blob).context("CiphertextBlob is not base64")?;
    let arn = reply
        .get("KeyId")
        .and_then(Value::as_str)
        .ok_or_else(|| anyhow!("KMS reply has no KeyId"))?
        .to_owned();
    Ok((plain, blob, arn))
}

/// Decrypt of a data key blob; `key_id` (the provider info) is passed so
/// KMS checks the blob is that key's, and the reply's KeyId is checked too.
pub async fn decrypt_data_key(
    client: &KmsClient,
    blob: &[u8],
    key_id: Option<&str>,
    context: &BTreeMap<String, String>,
) -> Result<Zeroizing<[u8; 32]>> {
    let mut req = json!({"CiphertextBlob": B64.encode(blob)});
    if let Some(k) = key_id {
        req["KeyId"] = json!(k);
    }
    if !context.is_empty() {
        req["EncryptionContext"] = json!(context);
    }
    let reply = client.call("Decrypt", &req).await?;
    if let Some(k) = key_id
        && reply.get("KeyId").and_then(Value::as_str) != Some(k)
    {
        bail!("KMS decrypted the data key with another key than {k}");
    }
    data_key_from(&reply)
}

/// Runs `kmsctl encrypt`.
pub async fn encrypt(global: &Global, args: EncryptArgs) -> Result<()> {
    let context = parse_context(&args.context)?;
    if args.frame_length == 0 || args.frame_length > esdk::MAX_FRAME_LEN {
        bail!("--frame-length must be in 1..={}", esdk::MAX_FRAME_LEN);
    }
    let input =
        File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let total = input.metadata().map(|m| m.len()).unwrap_or(0);
    if args.format == Format::Json && total > envelope::MAX_PLAINTEXT as u64 {
        bail!(
            "--format json holds the payload in memory: {} is larger than {} bytes; use the default format",
            args.file.display(),
            envelope::MAX_PLAINTEXT
        );
    }
    let target = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.file, true));
    let staged = Staged::new(&target, args.force)?;
    let client = global.client()?;
    let (data_key, blob, arn) = generate_data_key(&client, &args.key, &context).await?;

    let staged = match args.format {
        Format::Json => {
            let mut plain = Zeroizing::new(Vec::new());
            BufReader::new(input)
                .take(envelope::MAX_PLAINTEXT as u64 + 1)
                .read_to_end(&mut plain)?;
            let doc = envelope::seal(&data_key, &blob, &arn, &context, &plain)?;
            let mut f = staged.tmp.as_file();
            serde_json::to_writer_pretty(&mut f, &doc)?;
            f.write_all(b"\n")?;
            staged
        }
        Format::Esdk => {
            let mut message_id = [0u8; esdk::MESSAGE_ID_LEN];
            aws_lc_rs::rand::fill(&mut message_id).map_err(|_| anyhow!("no randomness"))?;
            let header = Header {
                suite: esdk::SUITE_COMMIT_KEY,
                message_id,
                commitment: keys::commitment_key(&data_key, &message_id),
                context,
                edks: vec![EncryptedDataKey {
                    provider_id: esdk::PROVIDER_AWS_KMS.to_owned(),
                    provider_info: arn.into_bytes(),
                    ciphertext: blob,
                }],
                frame_len: args.frame_length,
            };
            tokio::task::spawn_blocking(move || -> Result<Staged> {
                let bar = progress_bar(total);
                let mut r = BufReader::with_capacity(IO_BUF, input);
                let mut w = BufWriter::with_capacity(IO_BUF, staged.tmp.as_file());
                stream::encrypt(&mut r, &mut w, &header, &data_key, &mut |n| {
                    bar.set_position(n)
                })?;
                w.flush()?;
                drop(w);
                bar.finish_and_clear();
                Ok(staged)
            })
            .await??
        }
    };
    staged.commit()?;
    if !global.json {
        eprintln!("encrypted {} -> {}", args.file.display(), target.display());
    }
    Ok(())
}

/// Runs `kmsctl decrypt`.
pub async fn decrypt(global: &Global, args: DecryptArgs) -> Result<()> {
    let required = parse_context(&args.context)?;
    let input =
        File::open(&args.file).with_context(|| format!("opening {}", args.file.display()))?;
    let total = input.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = BufReader::with_capacity(IO_BUF, input);
    let first = {
        use std::io::BufRead;
        reader.fill_buf()?.first().copied()
    };
    let target = args
        .output
        .clone()
        .unwrap_or_else(|| default_output(&args.file, false));
    let staged = Staged::new(&target, args.force)?;
    let client = global.client()?;
    let fail = |e: anyhow::Error| {
        e.context(format!(
            "decrypting {}: no output written",
            args.file.display()
        ))
    };

    let staged = if first == Some(b'{') {
        let mut text = Vec::new();
        reader
            .take(envelope::MAX_DOCUMENT as u64 + 1)
            .read_to_end(&mut text)?;
        let doc = envelope::Envelope::parse(&text).map_err(fail)?;
        check_required(&doc.context, &required).map_err(fail)?;
        let dk = decrypt_data_key(
            &client,
            &doc.encrypted_data_key,
            Some(&doc.key_id),
            &doc.context,
        )
        .await
        .map_err(fail)?;
        let plain = doc.open(&dk).map_err(fail)?;
        staged.tmp.as_file().write_all(&plain)?;
        staged
    } else {
        let (header, raw, tag) = Header::read(&mut reader).map_err(|e| fail(e.into()))?;
        check_required(&header.context, &required).map_err(fail)?;
        let mut last_err = None;
        let mut data_key = None;
        for edk in header
            .edks
            .iter()
            .filter(|e| e.provider_id == esdk::PROVIDER_AWS_KMS)
        {
            let key_id = String::from_utf8_lossy(&edk.provider_info).into_owned();
            match decrypt_data_key(&client, &edk.ciphertext, Some(&key_id), &header.context).await {
                Ok(dk) => {
                    data_key = Some(dk);
                    break;
                }
                Err(e) => last_err = Some(e),
            }
        }
        let data_key = match (data_key, last_err) {
            (Some(dk), _) => dk,
            (None, Some(e)) => {
                return Err(fail(e.context("no encrypted data key could be decrypted")));
            }
            (None, None) => {
                return Err(fail(anyhow!(
                    "the message has no aws-kms encrypted data key"
                )));
            }
        };
        tokio::task::spawn_blocking(move || -> Result<Staged> {
            let bar = progress_bar(total);
            let mut w = BufWriter::with_capacity(IO_BUF, staged.tmp.as_file());
            stream::decrypt_body(
                &mut reader,
                &mut w,
                &header,
                &raw,
                &tag,
                &data_key,
                &mut |n| bar.set_position(n),
            )?;
            w.flush()?;
            drop(w);
            bar.finish_and_clear();
            Ok(staged)
        })
        .await?
        .map_err(fail)?
    };
    staged.commit()?;
    if !global.json {
        eprintln!("decrypted {} -> {}", args.file.display(), target.display());
    }
    Ok(())
}

fn check_required(
    actual: &BTreeMap<String, String>,
    required: &BTreeMap<String, String>,
) -> Result<()> {
    for (k, v) in required {
        match actual.get(k) {
            Some(a) if a == v => {}
            Some(_) => bail!("encryption context mismatch: {k} has another value in the message"),
            None => bail!("encryption context mismatch: the message has no {k}"),
        }
    }
    Ok(())
}
