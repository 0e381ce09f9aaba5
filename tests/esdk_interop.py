"""Independent reader/writer of the AWS Encryption SDK message format for the
kmsctl interop tests: the official Python `aws-encryption-sdk`, with its KMS
master key provider pointed at our server through the aws CLI's environment
(AWS_ENDPOINT_URL, AWS_CA_BUNDLE, AWS_REGION, AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY).

usage: esdk_interop.py encrypt KEY_ARN IN OUT [k=v ...]
       esdk_interop.py decrypt KEY_ARN IN OUT [k=v ...]   (context pairs checked)
"""
import sys

import aws_encryption_sdk
from aws_encryption_sdk import CommitmentPolicy
from aws_encryption_sdk.identifiers import Algorithm


def main():
    mode, key_arn, src, dst = sys.argv[1:5]
    context = dict(pair.split("=", 1) for pair in sys.argv[5:])
    client = aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )
    provider = aws_encryption_sdk.StrictAwsKmsMasterKeyProvider(key_ids=[key_arn])
    with open(src, "rb") as f:
        data = f.read()
    if mode == "encrypt":
        out, _ = client.encrypt(
            source=data,
            key_provider=provider,
            encryption_context=context,
            algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
            frame_length=4096,
        )
    else:
        out, header = client.decrypt(source=data, key_provider=provider)
        for k, v in context.items():
            if header.encryption_context.get(k) != v:
                sys.exit(f"context {k} mismatch: {header.encryption_context}")
        if header.algorithm != Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY:
            sys.exit(f"unexpected suite {header.algorithm}")
    with open(dst, "wb") as f:
        f.write(out)


if __name__ == "__main__":
    main()
