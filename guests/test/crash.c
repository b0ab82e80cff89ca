/*
 * @guest: Test: CRASH with the message "oops: test crash".
 */
#include "kit.h"

int main(void)
{
	lguest_crash("oops: test crash");
}
