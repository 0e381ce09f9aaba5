"""boto3 against hsm-kms: the second SDK family (botocore, HTTP/1.1, its own
SigV4 signer). Run by tests/tests/boto3.rs with the endpoint, CA and
credentials in the environment; exits non-zero on the first mismatch."""

import os
import sys

import boto3
import botocore.exceptions

kms = boto3.client(
    "kms",
    endpoint_url=os.environ["KMS_ENDPOINT"],
    region_name="us-east-1",
    verify=os.environ["KMS_CA"],
    aws_access_key_id=os.environ["KMS_ACCESS_KEY_ID"],
    aws_secret_access_key=os.environ["KMS_SECRET_ACCESS_KEY"],
)

key = kms.create_key(Description="boto3")["KeyMetadata"]
assert key["KeyState"] == "Enabled", key
kid = key["KeyId"]
kms.create_alias(AliasName="alias/boto3", TargetKeyId=kid)

ct = kms.encrypt(KeyId="alias/boto3", Plaintext=b"from python",
                 EncryptionContext={"lang": "py"})["CiphertextBlob"]
pt = kms.decrypt(CiphertextBlob=ct, EncryptionContext={"lang": "py"})
assert pt["Plaintext"] == b"from python", pt
assert pt["KeyId"] == key["Arn"], pt

dk = kms.generate_data_key(KeyId=kid, KeySpec="AES_256")
assert len(dk["Plaintext"]) == 32
assert kms.decrypt(CiphertextBlob=dk["CiphertextBlob"])["Plaintext"] == dk["Plaintext"]

ids = [k["KeyId"] for k in kms.list_keys()["Keys"]]
assert ids == [kid], ids
aliases = [a["AliasName"] for a in kms.list_aliases(KeyId=kid)["Aliases"]]
assert aliases == ["alias/boto3"], aliases

try:
    kms.decrypt(CiphertextBlob=ct, EncryptionContext={"lang": "rust"})
    sys.exit("decrypt with the wrong context succeeded")
except kms.exceptions.InvalidCiphertextException:
    pass

try:
    kms.describe_key(KeyId="alias/missing")
    sys.exit("describe of a missing alias succeeded")
except kms.exceptions.NotFoundException:
    pass

print("boto3 smoke OK")
