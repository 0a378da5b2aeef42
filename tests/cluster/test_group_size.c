/* sl_topology_group_size: the quorum group size a declarer asks for, from its broker URLs
 * (no server). */
#include "sltest.h"
#include "specline/topology.h"

static void test_group_size_from_the_url_list(void)
{
  SL_CHECK(sl_topology_group_size(NULL) == 0);
  SL_CHECK(sl_topology_group_size("") == 0);
  SL_CHECK(sl_topology_group_size("amqp://h1/") == 0); /* one URL: maybe a balancer; the broker decides */
  SL_CHECK(sl_topology_group_size("amqp://h1/,amqp://h2/") == 2);
  SL_CHECK(sl_topology_group_size("amqp://h1/,amqp://h2/,amqp://h3/") == 3);
  SL_CHECK(sl_topology_group_size("amqp://h1/, amqp://h2/,amqp://h3/,amqp://h4/,amqp://h5/") == 3);
  SL_CHECK(sl_topology_group_size("amqp://h1/,,amqp://h2/,") == 2); /* empty entries do not count */
}

static void test_default_opts_leave_it_to_the_broker(void)
{
  sl_topology_opts_t o;

  o.quorum_group_size = 7;
  sl_topology_opts_default(&o);
  SL_CHECK(o.quorum_group_size == 0);
}

SL_TEST_MAIN(SL_T(test_group_size_from_the_url_list), SL_T(test_default_opts_leave_it_to_the_broker))
