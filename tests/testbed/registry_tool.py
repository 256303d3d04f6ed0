#!/usr/bin/env python3
"""Small registry helper for the pullpilot test bed (standard library only).

Talks plain HTTP to the bed's open (no-auth) loopback registry.

Usage:
    registry_tool.py make-index --registry 127.0.0.1:PORT --from REPO:TAG --to REPO:TAG
        Builds a two-platform index (linux/amd64 + linux/arm64/v8) from one
        single-platform image: the amd64 entry is the source manifest as is,
        the arm64 entry is the same layers with a config whose platform says
        arm64.  Also tags the two platform manifests as TO_REPO:amd64 and
        TO_REPO:arm64.  Prints the index digest, after checking that a
        manifest HEAD with the index Accept types returns that same digest.
        With --arm-note TEXT the arm64 config carries TEXT as a label, so the
        index (and its arm64 manifest) change while the amd64 entry stays
        byte-identical: "only another platform changed".  With --amd-note TEXT
        the amd64 config carries TEXT too: an amd64 image no other tag shares.
    registry_tool.py head-digest --registry 127.0.0.1:PORT --ref REPO:TAG
        Prints the Docker-Content-Digest of a manifest HEAD that accepts
        every manifest and index type.
"""

import argparse
import hashlib
import json
import sys
import urllib.error
import urllib.request

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
ALL_TYPES = ", ".join([OCI_INDEX, DOCKER_LIST, OCI_MANIFEST, DOCKER_MANIFEST])


def sha256(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def request(method, url, data=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        body = err.read().decode(errors="replace")
        raise SystemExit(f"registry_tool: {method} {url} failed with {err.code}: {body}") from err


def split_ref(ref):
    repo, _, tag = ref.rpartition(":")
    if not repo:
        raise SystemExit(f"registry_tool: reference {ref!r} needs REPO:TAG")
    return repo, tag


def head_digest(base, repo, tag, accept=ALL_TYPES):
    _, headers, _ = request("HEAD", f"{base}/v2/{repo}/manifests/{tag}", headers={"Accept": accept})
    return {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")


def put_manifest(base, repo, tag, media_type, body):
    _, headers, _ = request(
        "PUT", f"{base}/v2/{repo}/manifests/{tag}", data=body,
        headers={"Content-Type": media_type},
    )
    digest = {k.lower(): v for k, v in headers.items()}.get("docker-content-digest")
    if digest != sha256(body):
        raise SystemExit(f"registry_tool: registry stored {repo}:{tag} as {digest}, expected {sha256(body)}")
    return digest


def mount_blob(base, repo, source_repo, digest):
    status, headers, _ = request(
        "POST", f"{base}/v2/{repo}/blobs/uploads/?mount={digest}&from={source_repo}",
        data=b"",
    )
    if status == 201:
        return
    # The registry could not mount: finish the upload it started with the blob's bytes.
    _, _, blob = request("GET", f"{base}/v2/{source_repo}/blobs/{digest}")
    upload_blob(base, repo, blob, headers)


def upload_blob(base, repo, blob, started=None):
    if started is None:
        _, started, _ = request("POST", f"{base}/v2/{repo}/blobs/uploads/", data=b"")
    location = {k.lower(): v for k, v in started.items()}["location"]
    if location.startswith("/"):
        location = base + location
    sep = "&" if "?" in location else "?"
    request(
        "PUT", f"{location}{sep}digest={sha256(blob)}", data=blob,
        headers={"Content-Type": "application/octet-stream"},
    )
    return sha256(blob)


def make_index(registry, source, target, arm_note=None, amd_note=None):
    base = f"http://{registry}"
    src_repo, src_tag = split_ref(source)
    dst_repo, dst_tag = split_ref(target)

    _, headers, manifest_bytes = request(
        "GET", f"{base}/v2/{src_repo}/manifests/{src_tag}",
        headers={"Accept": f"{OCI_MANIFEST}, {DOCKER_MANIFEST}"},
    )
    manifest = json.loads(manifest_bytes)
    media_type = manifest.get("mediaType") or {k.lower(): v for k, v in headers.items()}["content-type"]
    if media_type not in (DOCKER_MANIFEST, OCI_MANIFEST):
        raise SystemExit(f"registry_tool: {source} is a {media_type}, not a single-platform manifest")
    list_type = DOCKER_LIST if media_type == DOCKER_MANIFEST else OCI_INDEX

    for blob in [manifest["config"]] + manifest["layers"]:
        mount_blob(base, dst_repo, src_repo, blob["digest"])

    _, _, config_bytes = request("GET", f"{base}/v2/{src_repo}/blobs/{manifest['config']['digest']}")
    config = json.loads(config_bytes)
    if config.get("architecture") != "amd64" or config.get("os") != "linux":
        raise SystemExit(f"registry_tool: {source} is {config.get('os')}/{config.get('architecture')}, expected linux/amd64")
    arm_config = dict(config, architecture="arm64", variant="v8")
    if arm_note is not None:
        inner = dict(arm_config.get("config") or {})
        inner["Labels"] = dict(inner.get("Labels") or {}, **{"io.pptb.arm-note": arm_note})
        arm_config["config"] = inner
    arm_config_bytes = json.dumps(arm_config, separators=(",", ":")).encode()
    upload_blob(base, dst_repo, arm_config_bytes)

    if amd_note is not None:
        amd_config = dict(config)
        inner = dict(amd_config.get("config") or {})
        inner["Labels"] = dict(inner.get("Labels") or {}, **{"io.pptb.amd-note": amd_note})
        amd_config["config"] = inner
        amd_config_bytes = json.dumps(amd_config, separators=(",", ":")).encode()
        upload_blob(base, dst_repo, amd_config_bytes)
        amd_manifest = json.loads(manifest_bytes)
        amd_manifest["config"] = dict(
            amd_manifest["config"], digest=sha256(amd_config_bytes), size=len(amd_config_bytes)
        )
        manifest_bytes = json.dumps(amd_manifest, indent=3).encode()

    arm_manifest = json.loads(manifest_bytes)
    arm_manifest["config"] = dict(
        arm_manifest["config"], digest=sha256(arm_config_bytes), size=len(arm_config_bytes)
    )
    arm_manifest_bytes = json.dumps(arm_manifest, indent=3).encode()

    amd_digest = put_manifest(base, dst_repo, "amd64", media_type, manifest_bytes)
    arm_digest = put_manifest(base, dst_repo, "arm64", media_type, arm_manifest_bytes)

    index = {
        "schemaVersion": 2,
        "mediaType": list_type,
        "manifests": [
            {
                "mediaType": media_type, "size": len(manifest_bytes), "digest": amd_digest,
                "platform": {"architecture": "amd64", "os": "linux"},
            },
            {
                "mediaType": media_type, "size": len(arm_manifest_bytes), "digest": arm_digest,
                "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"},
            },
        ],
    }
    index_bytes = json.dumps(index, indent=3).encode()
    index_digest = put_manifest(base, dst_repo, dst_tag, list_type, index_bytes)

    seen = head_digest(base, dst_repo, dst_tag, accept=f"{OCI_INDEX}, {DOCKER_LIST}")
    if seen != index_digest:
        raise SystemExit(f"registry_tool: HEAD {target} returned {seen}, expected the index {index_digest}")
    print(index_digest)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    mk = sub.add_parser("make-index")
    mk.add_argument("--registry", required=True)
    mk.add_argument("--from", dest="source", required=True)
    mk.add_argument("--to", dest="target", required=True)
    mk.add_argument("--arm-note", dest="arm_note", default=None)
    mk.add_argument("--amd-note", dest="amd_note", default=None)
    hd = sub.add_parser("head-digest")
    hd.add_argument("--registry", required=True)
    hd.add_argument("--ref", required=True)
    args = parser.parse_args()

    if not args.registry.startswith(("127.", "localhost:", "[::1]:")):
        raise SystemExit("registry_tool: only loopback registries are allowed")
    if args.command == "make-index":
        make_index(args.registry, args.source, args.target, args.arm_note, args.amd_note)
    else:
        repo, tag = split_ref(args.ref)
        digest = head_digest(f"http://{args.registry}", repo, tag)
        if not digest:
            raise SystemExit(f"registry_tool: HEAD {args.ref} returned no Docker-Content-Digest")
        print(digest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
