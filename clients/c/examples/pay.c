/* pay.c: charge the bound wallet through scanbindd with libscanbind.
 *
 *   cc -o pay pay.c -I ../include -L <dir of libscanbind.so> -lscanbind
 *   ./pay ORDER_ID AMOUNT_MINOR CURRENCY DESCRIPTION
 *
 * Finds the daemon where scanbind_client_connect(NULL, ...) looks ($SCANBIND_SOCKET,
 * $SCANBIND_BUS_ADDRESS, the session bus, the system bus). Pays, gets the result both
 * ways the library offers (a callback, and a blocking wait with a timeout), prints
 * the receipt for the app's backend to verify, then marks the order delivered.
 * Exit status: 0 paid, 1 not paid, 2 bad arguments or a library error.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "scanbind.h"

#define TIMEOUT_MS 30000

/* The callback runs on the library's thread: hand the result over under a lock. */
struct completion {
    pthread_mutex_t lock;
    pthread_cond_t done;
    int called;
    int32_t state;
};

static void on_completed(void *user_data, int32_t state, const char *receipt,
                         const char *error_name) {
    struct completion *c = user_data;
    (void)receipt;
    pthread_mutex_lock(&c->lock);
    c->called = 1;
    c->state = state;
    pthread_cond_signal(&c->done);
    pthread_mutex_unlock(&c->lock);
    printf("callback: state %d%s%s\n", (int)state, error_name[0] ? ", error " : "",
           error_name);
}

static const char *state_name(int32_t state) {
    switch (state) {
    case SCANBIND_PAYMENT_PENDING: return "pending";
    case SCANBIND_PAYMENT_SUCCEEDED: return "succeeded";
    case SCANBIND_PAYMENT_FAILED: return "failed";
    case SCANBIND_PAYMENT_PENDING_UNKNOWN: return "pending-unknown";
    case SCANBIND_PAYMENT_CANCELLED: return "cancelled";
    default: return "unknown";
    }
}

static int fail(const char *what, int32_t code) {
    fprintf(stderr, "%s failed (code %d): %s %s\n", what, (int)code, scanbind_last_error(),
            scanbind_last_error_name());
    return 2;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: %s ORDER_ID AMOUNT_MINOR CURRENCY DESCRIPTION\n", argv[0]);
        return 2;
    }
    char *end = NULL;
    errno = 0;
    long long amount = strtoll(argv[2], &end, 10);
    if (errno != 0 || *end != '\0' || amount <= 0) {
        fprintf(stderr, "AMOUNT_MINOR must be a positive whole number of minor units\n");
        return 2;
    }

    ScanbindClient *client = NULL;
    int32_t rc = scanbind_client_connect(NULL, TIMEOUT_MS, &client);
    if (rc != SCANBIND_OK) return fail("connect", rc);

    ScanbindPayment *payment = NULL;
    rc = scanbind_pay(client, argv[1], (int64_t)amount, argv[3], argv[4], TIMEOUT_MS, &payment);
    if (rc != SCANBIND_OK) {
        int status = fail("pay", rc);
        scanbind_client_free(client);
        return status;
    }
    printf("payment %s recorded\n", scanbind_payment_path(payment));

    struct completion c = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0};
    rc = scanbind_payment_on_completed(payment, on_completed, &c);
    if (rc != SCANBIND_OK) return fail("on_completed", rc);

    int32_t state = SCANBIND_PAYMENT_PENDING;
    rc = scanbind_payment_wait(payment, TIMEOUT_MS, &state);
    if (rc != SCANBIND_OK) return fail("wait", rc);
    printf("state: %s\n", state_name(state));

    /* The callback comes too; wait for it so that both ways are shown. */
    pthread_mutex_lock(&c.lock);
    while (!c.called) pthread_cond_wait(&c.done, &c.lock);
    pthread_mutex_unlock(&c.lock);

    int32_t polled = SCANBIND_PAYMENT_PENDING;
    rc = scanbind_payment_poll(payment, &polled);
    if (rc != SCANBIND_OK) return fail("poll", rc);
    if (polled != state || c.state != state) {
        fprintf(stderr, "callback, poll and wait disagree: %d %d %d\n", (int)c.state,
                (int)polled, (int)state);
        return 2;
    }

    int status = 1;
    if (state == SCANBIND_PAYMENT_SUCCEEDED) {
        char *receipt = NULL;
        rc = scanbind_payment_receipt(payment, TIMEOUT_MS, &receipt);
        if (rc != SCANBIND_OK) return fail("receipt", rc);
        /* Send this to your backend; it verifies it against /v1/receipt-keys. */
        printf("receipt: %s\n", receipt ? receipt : "(none)");
        scanbind_string_free(receipt);
        /* ... deliver the goods, then: */
        rc = scanbind_payment_finish(payment, TIMEOUT_MS);
        if (rc != SCANBIND_OK) return fail("finish", rc);
        printf("delivered\n");
        status = 0;
    }
    scanbind_payment_free(payment);
    scanbind_client_free(client);
    return status;
}
