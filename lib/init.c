/*
 * Starting the library (custos/init.h): the one place that starts OpenSSL
 * for every front end.
 */
#include <errno.h>
#include <openssl/crypto.h>

#include "custos/init.h"

int
cs_lib_init(void)
{
	if (OPENSSL_init_crypto(0, NULL) != 1 || OSSL_LIB_CTX_get0_global_default() == NULL)
		return -ENOMEM;
	return 0;
}
