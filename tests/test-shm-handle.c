#include "helpers.h"
#include <brood/shm.h>
static void test_placeholder(void **state) { (void)state; }
int main(void)
{
        const struct CMUnitTest tests[] = { cmocka_unit_test(test_placeholder) };
        return cmocka_run_group_tests_name("shm-seg", tests, NULL, NULL);
}
