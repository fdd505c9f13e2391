/*
 * cartosync — the node TLS identity (see cartosync/tls.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "cartosync/error.h"
#include "cartosync/tls.h"

int
cs_tls_key_hash(char **out, EVP_PKEY *key)
{
	unsigned char *der = NULL, digest[SHA256_DIGEST_LENGTH];
	char *hex;
	int len;

	*out = NULL;
	if ((len = i2d_PUBKEY(key, &der)) <= 0)
		return cs_error_set(CS_EINVALID, "cannot encode a TLS public key");
	SHA256(der, (size_t)len, digest);
	OPENSSL_free(der);
	if ((hex = malloc(7 + 2 * sizeof(digest) + 1)) == NULL)
		return cs_error_set(CS_ERROR, "out of memory");
	memcpy(hex, "sha256:", 7);
	for (size_t i = 0; i < sizeof(digest); i++)
		snprintf(hex + 7 + 2 * i, 3, "%02x", digest[i]);
	*out = hex;
	return 0;
}

int
cs_tls_peer_hash(char **out, SSL *ssl)
{
	X509 *cert = SSL_get1_peer_certificate(ssl);
	EVP_PKEY *key;
	int error;

	*out = NULL;
	if (cert == NULL)
		return cs_error_set(CS_ENOTFOUND,
				    "the other end presented no certificate");
	if ((key = X509_get0_pubkey(cert)) == NULL)
		error = cs_error_set(CS_EINVALID,
				     "the other end's certificate has no key");
	else
		error = cs_tls_key_hash(out, key);
	X509_free(cert);
	return error;
}

/*
 * Certificates are self-signed and identified by their key: the chain
 * check's verdict on the issuer is ignored, but the certificate must be
 * self-consistent (its own signature checks out with its key), current,
 * and alone (no chain).
 */
static int
accept_self_signed(int ok, X509_STORE_CTX *ctx)
{
	X509 *cert = X509_STORE_CTX_get_current_cert(ctx);
	int err = X509_STORE_CTX_get_error(ctx);

	if (ok)
		return 1;
	if (X509_STORE_CTX_get_error_depth(ctx) != 0 || cert == NULL)
		return 0;
	switch (err) {
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_CERT_UNTRUSTED:
	case X509_V_ERR_INVALID_CA:
		break;
	default:
		return 0;
	}
	{
		EVP_PKEY *key = X509_get0_pubkey(cert);

		if (key == NULL || X509_verify(cert, key) != 1)
			return 0;
	}
	X509_STORE_CTX_set_error(ctx, X509_V_OK);
	return 1;
}

static int
ctx_new(SSL_CTX **out, cs_node *node, int server)
{
	const char *key = cs_node_config_get(node, "node", "tls-key");
	const char *cert = cs_node_config_get(node, "node", "tls-cert");
	char kpath[4096], cpath[4096];
	SSL_CTX *ctx;

	*out = NULL;
	if (key == NULL)
		key = CS_NODE_TLS_KEY;
	if (cert == NULL)
		cert = CS_NODE_TLS_CERT;
	snprintf(kpath, sizeof(kpath), "%s%s%s", key[0] == '/' ? "" :
		 cs_node_dir(node), key[0] == '/' ? "" : "/", key);
	snprintf(cpath, sizeof(cpath), "%s%s%s", cert[0] == '/' ? "" :
		 cs_node_dir(node), cert[0] == '/' ? "" : "/", cert);

	ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
	if (ctx == NULL)
		return cs_error_set(CS_ERROR, "cannot create a TLS context");
	if (!SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION)) {
		SSL_CTX_free(ctx);
		return cs_error_set(CS_ERROR, "TLS 1.3 is not available");
	}
	if (SSL_CTX_use_certificate_file(ctx, cpath, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, kpath, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(ctx) != 1) {
		ERR_clear_error();
		SSL_CTX_free(ctx);
		return cs_error_set(CS_EINVALID,
				    "cannot load the node TLS identity %s, %s",
				    kpath, cpath);
	}
	SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_self_signed);
	SSL_CTX_set_verify_depth(ctx, 0);
	SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
	if (server)
		SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	*out = ctx;
	return 0;
}

int
cs_tls_server_ctx(SSL_CTX **out, cs_node *node)
{
	return ctx_new(out, node, 1);
}

int
cs_tls_client_ctx(SSL_CTX **out, cs_node *node)
{
	return ctx_new(out, node, 0);
}

const cs_member_key *
cs_tls_member(const cs_consortium *c, const char *hash)
{
	size_t n = cs_consortium_key_count(c);

	if (hash == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const cs_member_key *k = cs_consortium_key_at(c, i);

		if (k->tls && strcmp(k->tls, hash) == 0 && !k->revoked &&
		    k->org && cs_consortium_org_active(c, k->org))
			return k;
	}
	return NULL;
}
