#!/bin/sh
# Run the original AIDE (the `aideml` package) as a dojoflow command agent, the way MLE-bench's AIDE image
# does: the task's instructions and description as AIDE's task file, /home/data as its data, and the
# solution it leaves copied to /home/submission and /home/code. AIDE talks to $OPENAI_BASE_URL (the
# episode's LLM gateway). Settings: AIDE_BIN (the `aide` program), AIDE_MODEL, AIDE_STEPS.
#
#   dojoflow run --task penguins-body-mass --agent-dir examples/command_agents \
#       --agent-command "sh aide_start.sh" --agent-bind ~/.cache/dojoflow/agent-venvs/aideml-0.2.2 \
#       --agent-env AIDE_BIN=$HOME/.cache/dojoflow/agent-venvs/aideml-0.2.2/bin/aide --model gpt-4o-mini
set -u
cd "${AGENT_DIR:-/home/agent}"
{
  cat /home/instructions.txt
  printf '\nCOMPETITION INSTRUCTIONS\n------\n\n'
  cat /home/data/description.md
} > full_instructions.txt
mkdir -p workspaces
model="${AIDE_MODEL:-${DOJOFLOW_LLM_MODEL:-gpt-4o-mini}}"
"${AIDE_BIN:-aide}" data_dir=/home/data/ desc_file="$PWD/full_instructions.txt" exp_name=exp \
  log_dir="${LOGS_DIR:-/home/logs}" workspace_dir="$PWD/workspaces" copy_data=False generate_report=False \
  agent.steps="${AIDE_STEPS:-5}" agent.code.model="$model" agent.feedback.model="$model" "$@"
status=$?
# AIDE's code writes ./working/submission.csv; keep the last one and the best solution AIDE chose
for f in workspaces/*-exp/working/submission.csv; do [ -f "$f" ] && cp "$f" "${SUBMISSION_DIR:-/home/submission}/"; done
for f in "${LOGS_DIR:-/home/logs}"/*-exp/best_solution.py; do [ -f "$f" ] && cp "$f" "${CODE_DIR:-/home/code}/"; done
exit $status
