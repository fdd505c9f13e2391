#!/usr/bin/env python3
"""Regenerate the SSHSIG test cases in this directory.

Needs ssh-keygen (OpenSSH >= 8.9).  Keys are made in a temporary directory
and thrown away; only public keys and signatures are kept.  The layout:

  message             the signed payload (a commit-like text)
  signer.pub          the key that signed every case
  other.pub           a second key, used to forge "signed by another key"
  valid/<case>/       armor (no final newline) that must verify, signer = signer.pub
  invalid/<case>/     armor that must fail; `expect` holds EINVALID or EVERIFY
  each case may hold `namespace` (default "git") and `message` (default ../../message)

Run: python3 gen.py   (from anywhere; it writes next to itself)
"""
import base64
import os
import shutil
import struct
import subprocess
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
BEGIN = "-----BEGIN SSH SIGNATURE-----"
END = "-----END SSH SIGNATURE-----"

MESSAGE = (
    b"tree 4b825dc642cb6eb9a060e54bf8d69288fbee4904\n"
    b"parent 8a1f0c5e2d7b3a9f6e4c1d0b2a3f5e7d9c8b6a41\n"
    b"author Clinique Mobile Sud <edits@cms.example> 1735689600 +0000\n"
    b"committer Clinique Mobile Sud <edits@cms.example> 1735689600 +0000\n"
    b"\n"
    b"records: update service 'soins-primaires-03' opening hours\n"
    b"\n"
    b"Cartosync-Record: service/7f/soins-primaires-03\n"
)


def armor(blob, width=70, nl="\n"):
    b64 = base64.b64encode(blob).decode()
    lines = [b64[i:i + width] for i in range(0, len(b64), width)]
    return BEGIN + nl + nl.join(lines) + nl + END


def s(b):
    return struct.pack(">I", len(b)) + b


def u32(v):
    return struct.pack(">I", v)


def read_string(b, off):
    (n,) = struct.unpack(">I", b[off:off + 4])
    return b[off + 4:off + 4 + n], off + 4 + n


def parse(blob):
    assert blob[:6] == b"SSHSIG"
    (version,) = struct.unpack(">I", blob[6:10])
    off = 10
    fields = []
    for _ in range(5):
        v, off = read_string(blob, off)
        fields.append(v)
    assert off == len(blob)
    return version, fields


def build(version, pub, ns, reserved, hashalg, sig, magic=b"SSHSIG"):
    return magic + u32(version) + s(pub) + s(ns) + s(reserved) + s(hashalg) + s(sig)


def keygen(tmp, name):
    path = os.path.join(tmp, name)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name,
                    "-f", path], check=True)
    return path


def sign(key, ns, data, tmp, hashalg="sha512"):
    path = os.path.join(tmp, "data")
    with open(path, "wb") as f:
        f.write(data)
    if os.path.exists(path + ".sig"):
        os.unlink(path + ".sig")
    subprocess.run(["ssh-keygen", "-q", "-Y", "sign", "-n", ns, "-f", key,
                    "-O", "hashalg=" + hashalg, path], check=True,
                   stderr=subprocess.DEVNULL)
    with open(path + ".sig") as f:
        text = f.read()
    assert text.endswith(END + "\n"), "ssh-keygen armor changed"
    return text[:-1]


def unarmor(text):
    lines = text.split("\n")
    assert lines[0] == BEGIN and lines[-1] == END
    return base64.b64decode("".join(lines[1:-1]), validate=True)


def write_case(kind, name, text, expect=None, namespace=None, message=None):
    d = os.path.join(HERE, kind, name)
    os.makedirs(d)
    with open(os.path.join(d, "armor"), "wb") as f:
        f.write(text.encode() if isinstance(text, str) else text)
    if expect:
        with open(os.path.join(d, "expect"), "w") as f:
            f.write(expect + "\n")
    if namespace:
        with open(os.path.join(d, "namespace"), "w") as f:
            f.write(namespace + "\n")
    if message is not None:
        with open(os.path.join(d, "message"), "wb") as f:
            f.write(message)


def main():
    for kind in ("valid", "invalid"):
        shutil.rmtree(os.path.join(HERE, kind), ignore_errors=True)
    with open(os.path.join(HERE, "message"), "wb") as f:
        f.write(MESSAGE)

    with tempfile.TemporaryDirectory() as tmp:
        key = keygen(tmp, "signer")
        other = keygen(tmp, "other")
        shutil.copy(key + ".pub", os.path.join(HERE, "signer.pub"))
        shutil.copy(other + ".pub", os.path.join(HERE, "other.pub"))

        good = sign(key, "git", MESSAGE, tmp)
        good256 = sign(key, "git", MESSAGE, tmp, "sha256")
        other_ns = sign(key, "file", MESSAGE, tmp)
        by_other = sign(other, "git", MESSAGE, tmp)
        # The longer blob of a long namespace makes a last line of 70.
        write_case("valid", "ssh-keygen-sha512", good)
        write_case("valid", "ssh-keygen-sha256", good256)
        ns70 = "n" * 13
        for n in range(1, 80):
            t = sign(key, "n" * n, MESSAGE, tmp)
            body = t.split("\n")[1:-1]
            if len(body[-1]) == 70:
                ns70 = "n" * n
                write_case("valid", "full-last-line", t, namespace=ns70)
                break

        blob = unarmor(good)
        version, (pub, ns, reserved, hashalg, sig) = parse(blob)
        _, (otherpub, _, _, _, othersig) = parse(unarmor(by_other))
        _, (_, _, _, _, sig_file) = parse(unarmor(other_ns))
        raw = read_string(sig, 0)[1]
        sigbytes = read_string(sig, raw)[0]
        keytype, off = read_string(pub, 0)
        keybytes = read_string(pub, off)[0]

        def inv(name, text, expect, **kw):
            write_case("invalid", name, text, expect, **kw)

        def blobcase(name, b, expect, **kw):
            inv(name, armor(b), expect, **kw)

        # The signature and message.
        m = bytearray(MESSAGE)
        m[40] ^= 0x01
        inv("flipped-message-byte", good, "EVERIFY", message=bytes(m))
        inv("empty-message", good, "EVERIFY", message=b"")
        fs = bytearray(sigbytes)
        fs[10] ^= 0x80
        blobcase("flipped-signature-byte",
                 build(1, pub, ns, reserved, hashalg,
                       s(b"ssh-ed25519") + s(bytes(fs))), "EVERIFY")
        fs = bytearray(sigbytes)
        fs[63] ^= 0x10  # in S: may also fail OpenSSL's S < L check
        blobcase("flipped-signature-s",
                 build(1, pub, ns, reserved, hashalg,
                       s(b"ssh-ed25519") + s(bytes(fs))), "EVERIFY")
        blobcase("zero-signature",
                 build(1, pub, ns, reserved, hashalg,
                       s(b"ssh-ed25519") + s(bytes(64))), "EVERIFY")
        # Namespaces.
        inv("wrong-namespace", other_ns, "EINVALID")
        inv("namespace-expected-file", good, "EINVALID", namespace="file")
        blobcase("namespace-relabelled",
                 build(1, pub, b"git", reserved, hashalg, sig_file), "EVERIFY")
        blobcase("empty-namespace",
                 build(1, pub, b"", reserved, hashalg, sig), "EINVALID")
        blobcase("namespace-with-nul",
                 build(1, pub, b"git\0", reserved, hashalg, sig), "EINVALID")
        # Keys.
        blobcase("other-key-embedded",
                 build(1, otherpub, ns, reserved, hashalg, sig), "EVERIFY")
        blobcase("other-key-signature",
                 build(1, pub, ns, reserved, hashalg, othersig), "EVERIFY")
        blobcase("algorithm-ssh-rsa",
                 build(1, s(b"ssh-rsa") + s(keybytes), ns, reserved, hashalg,
                       sig), "EINVALID")
        blobcase("algorithm-sk-ed25519",
                 build(1, s(b"sk-ssh-ed25519@openssh.com") + s(keybytes) +
                       s(b"ssh:"), ns, reserved, hashalg, sig), "EINVALID")
        blobcase("signature-algorithm-ssh-rsa",
                 build(1, pub, ns, reserved, hashalg,
                       s(b"ssh-rsa") + s(sigbytes)), "EINVALID")
        blobcase("signature-algorithm-sk",
                 build(1, pub, ns, reserved, hashalg,
                       s(b"sk-ssh-ed25519@openssh.com") + s(sigbytes) +
                       b"\x01" + u32(1)), "EINVALID")
        blobcase("public-key-31-bytes",
                 build(1, s(keytype) + s(keybytes[:31]), ns, reserved,
                       hashalg, sig), "EINVALID")
        blobcase("public-key-33-bytes",
                 build(1, s(keytype) + s(keybytes + b"\0"), ns, reserved,
                       hashalg, sig), "EINVALID")
        blobcase("signature-63-bytes",
                 build(1, pub, ns, reserved, hashalg,
                       s(b"ssh-ed25519") + s(sigbytes[:63])), "EINVALID")
        blobcase("signature-65-bytes",
                 build(1, pub, ns, reserved, hashalg,
                       s(b"ssh-ed25519") + s(sigbytes + b"\0")), "EINVALID")
        # Blob structure.
        blobcase("version-2", build(2, pub, ns, reserved, hashalg, sig),
                 "EINVALID")
        blobcase("version-0", build(0, pub, ns, reserved, hashalg, sig),
                 "EINVALID")
        blobcase("reserved-not-empty",
                 build(1, pub, ns, b"x", hashalg, sig), "EINVALID")
        blobcase("hash-md5", build(1, pub, ns, reserved, b"md5", sig),
                 "EINVALID")
        blobcase("hash-SHA512-uppercase",
                 build(1, pub, ns, reserved, b"SHA512", sig), "EINVALID")
        blobcase("hash-sha512-with-nul",
                 build(1, pub, ns, reserved, b"sha512\0", sig), "EINVALID")
        blobcase("trailing-data-in-blob", blob + b"\0", "EINVALID")
        blobcase("trailing-data-in-signature",
                 build(1, pub, ns, reserved, hashalg, sig + b"\0"),
                 "EINVALID")
        blobcase("trailing-data-in-public-key",
                 build(1, pub + b"\0", ns, reserved, hashalg, sig),
                 "EINVALID")
        blobcase("truncated-blob", blob[:-1], "EINVALID")
        blobcase("magic-only", b"SSHSIG", "EINVALID")
        blobcase("bad-magic", b"SSHSIH" + blob[6:], "EINVALID")
        blobcase("huge-string-length",
                 blob[:10] + b"\xff\xff\xff\xff" + blob[14:], "EINVALID")
        # Armor.
        inv("trailing-newline", good + "\n", "EINVALID")
        inv("trailing-text", good + "\nx", "EINVALID")
        inv("leading-newline", "\n" + good, "EINVALID")
        inv("rewrapped-64", armor(blob, 64), "EINVALID")
        inv("rewrapped-76", armor(blob, 76), "EINVALID")
        inv("one-line", armor(blob, 10000), "EINVALID")
        inv("crlf", armor(blob, 70, "\r\n"), "EINVALID")
        lines = good.split("\n")
        inv("space-at-line-end", "\n".join(
            [lines[0], lines[1] + " "] + lines[2:]), "EINVALID")
        inv("space-after-end", good + " ", "EINVALID")
        inv("space-in-base64", "\n".join(
            [lines[0], lines[1][:35] + " " + lines[1][35:]] + lines[2:]),
            "EINVALID")
        inv("blank-line-before-end", "\n".join(lines[:-1] + ["", END]),
            "EINVALID")
        assert lines[-2].endswith("=") and not lines[-2].endswith("==")
        inv("missing-padding", "\n".join(
            lines[:-2] + [lines[-2][:-1], END]), "EINVALID")
        inv("extra-padding", "\n".join(
            lines[:-2] + [lines[-2] + "====", END]), "EINVALID")
        last = lines[-2]
        # The digit before '=' carries 2 unused low bits; set one.
        alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
        d = alpha[alpha.index(last[-2]) | 1]
        assert d != last[-2]
        inv("nonzero-trailing-bits", "\n".join(
            lines[:-2] + [last[:-2] + d + "=", END]), "EINVALID")
        inv("begin-without-newline", good.replace(BEGIN + "\n", BEGIN, 1),
            "EINVALID")
        inv("no-end-line", "\n".join(lines[:-1]), "EINVALID")
        inv("no-begin-line", "\n".join(lines[1:]), "EINVALID")
        inv("empty-body", BEGIN + "\n" + END, "EINVALID")
        inv("empty-line-body", BEGIN + "\n\n" + END, "EINVALID")
        inv("pgp-armor", good.replace("SSH SIGNATURE", "PGP SIGNATURE"),
            "EINVALID")
        inv("empty", "", "EINVALID")


if __name__ == "__main__":
    main()
