#!/usr/bin/env bash
# npm run faults: the full fault suite (5x the churn of the short one in npm test, longer
# storms, more compaction rounds) plus the bad-input table, then docs/reliability.md is
# regenerated from the results — also when a scenario failed, so the table shows it.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.." || exit 1
mkdir -p docs/reliability

TS_KCM_SKIP_CONTROLPLANE=1 node --experimental-vm-modules node_modules/jest/bin/jest.js \
  lib/cli/bad-input.test.ts --selectProjects unit --maxWorkers=1
bad_input=$?

# --forceExit: after a failed scenario a proxy or child may outlive its test (each stops by
# itself within 30 minutes); the report below must not wait for that.
TS_KCM_FAULTS_FULL=1 TS_KCM_FAULTS_REPORT_DIR="$PWD/docs/reliability" \
  node --experimental-vm-modules node_modules/jest/bin/jest.js \
  test/integration/faults --selectProjects integration --maxWorkers=1 --forceExit
faults=$?

node --import ./test/faults/register.mjs test/faults/report.ts || exit 1
echo "docs/reliability.md regenerated (bad input: exit $bad_input, fault suite: exit $faults)"
if [ "$bad_input" -ne 0 ] || [ "$faults" -ne 0 ]; then exit 1; fi
