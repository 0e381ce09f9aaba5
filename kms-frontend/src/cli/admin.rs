//! kmsctl's administrative subcommands, one per common KMS call and named
//! like the aws CLI's (`create-key`, `list-keys`, `describe-key`,
//! `create-alias`, `update-alias`, `delete-alias`, `list-aliases`,
//! `enable-key`, `disable-key`, `schedule-key-deletion`,
//! `cancel-key-deletion`). Each builds the request JSON, calls the shared
//! client and prints the reply (human or `--json`). List calls follow
//! `NextMarker` until the end.

use super::Global;
use super::client::KmsClient;
use super::output::{date, print_fields, print_json, print_table, text};
use clap::Subcommand;
use serde_json::{Value, json};

/// The admin subcommands.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a symmetric KMS key.
    CreateKey {
        #[arg(long)]
        description: Option<String>,
        /// Key spec (default SYMMETRIC_DEFAULT).
        #[arg(long)]
        key_spec: Option<String>,
        /// Key usage (default ENCRYPT_DECRYPT).
        #[arg(long)]
        key_usage: Option<String>,
    },
    /// List the caller's keys.
    ListKeys,
    /// Show a key's metadata (key id, ARN or alias).
    DescribeKey { key_id: String },
    /// List aliases (all, or of one key).
    ListAliases {
        #[arg(long)]
        key_id: Option<String>,
    },
    /// Create an alias (alias/NAME) for a key.
    CreateAlias { alias_name: String, key_id: String },
    /// Point an existing alias at another key.
    UpdateAlias { alias_name: String, key_id: String },
    /// Delete an alias.
    DeleteAlias { alias_name: String },
    /// Enable a key.
    EnableKey { key_id: String },
    /// Disable a key.
    DisableKey { key_id: String },
    /// Schedule a key's deletion (7-30 days, default 30).
    ScheduleKeyDeletion {
        key_id: String,
        #[arg(long)]
        pending_window_in_days: Option<u32>,
    },
    /// Cancel a scheduled deletion (the key is left disabled, as in AWS).
    CancelKeyDeletion { key_id: String },
}

/// Runs one admin subcommand.
pub async fn run(global: &Global, cmd: AdminCommand) -> anyhow::Result<()> {
    let client = global.client()?;
    let json = global.json;
    match cmd {
        AdminCommand::CreateKey {
            description,
            key_spec,
            key_usage,
        } => {
            let mut req = json!({});
            put(&mut req, "Description", description);
            put(&mut req, "KeySpec", key_spec);
            put(&mut req, "KeyUsage", key_usage);
            let reply = client.call("CreateKey", &req).await?;
            show_metadata(json, &reply);
        }
        AdminCommand::DescribeKey { key_id } => {
            let reply = client
                .call("DescribeKey", &json!({"KeyId": key_id}))
                .await?;
            show_metadata(json, &reply);
        }
        AdminCommand::ListKeys => {
            let keys = list_all(&client, "ListKeys", json!({}), "Keys").await?;
            if json {
                print_json(&json!({ "Keys": keys }));
            } else {
                let rows: Vec<Vec<String>> = keys
                    .iter()
                    .map(|k| vec![text(k.get("KeyId")), text(k.get("KeyArn"))])
                    .collect();
                print_table(&["KEY ID", "ARN"], &rows);
            }
        }
        AdminCommand::ListAliases { key_id } => {
            let mut req = json!({});
            put(&mut req, "KeyId", key_id);
            let aliases = list_all(&client, "ListAliases", req, "Aliases").await?;
            if json {
                print_json(&json!({ "Aliases": aliases }));
            } else {
                let rows: Vec<Vec<String>> = aliases
                    .iter()
                    .map(|a| vec![text(a.get("AliasName")), text(a.get("TargetKeyId"))])
                    .collect();
                print_table(&["ALIAS", "TARGET KEY ID"], &rows);
            }
        }
        AdminCommand::CreateAlias { alias_name, key_id } => {
            let req = json!({"AliasName": alias_name, "TargetKeyId": key_id});
            let reply = client.call("CreateAlias", &req).await?;
            done(json, &reply, &format!("created {alias_name} -> {key_id}"));
        }
        AdminCommand::UpdateAlias { alias_name, key_id } => {
            let req = json!({"AliasName": alias_name, "TargetKeyId": key_id});
            let reply = client.call("UpdateAlias", &req).await?;
            done(json, &reply, &format!("updated {alias_name} -> {key_id}"));
        }
        AdminCommand::DeleteAlias { alias_name } => {
            let reply = client
                .call("DeleteAlias", &json!({"AliasName": alias_name}))
                .await?;
            done(json, &reply, &format!("deleted {alias_name}"));
        }
        AdminCommand::EnableKey { key_id } => {
            let reply = client.call("EnableKey", &json!({"KeyId": key_id})).await?;
            done(json, &reply, &format!("enabled {key_id}"));
        }
        AdminCommand::DisableKey { key_id } => {
            let reply = client.call("DisableKey", &json!({"KeyId": key_id})).await?;
            done(json, &reply, &format!("disabled {key_id}"));
        }
        AdminCommand::ScheduleKeyDeletion {
            key_id,
            pending_window_in_days,
        } => {
            let mut req = json!({"KeyId": key_id});
            put(&mut req, "PendingWindowInDays", pending_window_in_days);
            let reply = client.call("ScheduleKeyDeletion", &req).await?;
            if json {
                print_json(&reply);
            } else {
                print_fields(&[
                    ("KeyId", text(reply.get("KeyId"))),
                    ("KeyState", text(reply.get("KeyState"))),
                    ("DeletionDate", date(reply.get("DeletionDate"))),
                    (
                        "PendingWindowInDays",
                        text(reply.get("PendingWindowInDays")),
                    ),
                ]);
            }
        }
        AdminCommand::CancelKeyDeletion { key_id } => {
            let reply = client
                .call("CancelKeyDeletion", &json!({"KeyId": key_id}))
                .await?;
            done(json, &reply, &format!("cancelled deletion of {key_id}"));
        }
    }
    Ok(())
}

/// Sets `req[name] = value` when `value` is given.
fn put<T: serde::Serialize>(req: &mut Value, name: &str, value: Option<T>) {
    if let (Some(v), Some(obj)) = (
        value.and_then(|v| serde_json::to_value(v).ok()),
        req.as_object_mut(),
    ) {
        obj.insert(name.to_owned(), v);
    }
}

/// Follows `NextMarker` and concatenates the `field` arrays of every page.
async fn list_all(
    client: &KmsClient,
    target: &str,
    mut req: Value,
    field: &str,
) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    loop {
        let reply = client.call(target, &req).await?;
        if let Some(items) = reply.get(field).and_then(Value::as_array) {
            all.extend(items.iter().cloned());
        }
        let truncated = reply.get("Truncated").and_then(Value::as_bool) == Some(true);
        match (truncated, reply.get("NextMarker").and_then(Value::as_str)) {
            (true, Some(marker)) => {
                if let Some(obj) = req.as_object_mut() {
                    obj.insert("Marker".to_owned(), Value::String(marker.to_owned()));
                }
            }
            _ => return Ok(all),
        }
    }
}

fn show_metadata(json: bool, reply: &Value) {
    if json {
        print_json(reply);
        return;
    }
    let m = reply.get("KeyMetadata");
    let f = |name: &str| m.and_then(|m| m.get(name));
    print_fields(&[
        ("KeyId", text(f("KeyId"))),
        ("Arn", text(f("Arn"))),
        ("Description", text(f("Description"))),
        ("KeyState", text(f("KeyState"))),
        ("Enabled", text(f("Enabled"))),
        ("KeySpec", text(f("KeySpec"))),
        ("KeyUsage", text(f("KeyUsage"))),
        ("Origin", text(f("Origin"))),
        ("CreationDate", date(f("CreationDate"))),
        ("DeletionDate", date(f("DeletionDate"))),
    ]);
}

fn done(json: bool, reply: &Value, message: &str) {
    if json {
        print_json(reply);
    } else {
        println!("{message}");
    }
}
