# The course's commands. A newcomer needs two: `make lab` and `make test`.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
COURSE_CACHE ?= $(HOME)/.cache/cloud-native-course
LOCAL_KUBECONFIG := /var/lib/cloud-native-course/kubeconfig
LOCAL_BIN := $(shell bash -c 'source cluster/local/versions.sh && echo $$BIN_DIR')
HELM_BIN_DIR := $(shell bash -c 'source cluster/local/versions.sh && dirname $$HELM_BIN')

# Which cluster: kind where kind is installed, else the local one (Linux as root), else the
# current kubeconfig context. Override with CLUSTER=kind|local|kubeconfig.
ifeq ($(origin CLUSTER), undefined)
  ifneq ($(shell command -v kind),)
    CLUSTER := kind
  else ifeq ($(shell uname -s)-$(shell id -u),Linux-0)
    CLUSTER := local
  else
    CLUSTER := kubeconfig
  endif
endif
export COURSE_CLUSTER := $(CLUSTER)
ifeq ($(CLUSTER),local)
  export KUBECONFIG := $(LOCAL_KUBECONFIG)
endif
ifeq ($(CLUSTER),kind)
  export KUBECONFIG := $(or $(KUBECONFIG),$(HOME)/.kube/config)
endif
# nbgrader shells out to alembic, the local cluster's kubectl matches its API server, and helm
# is the one cluster/tools.sh builds.
export PATH := $(CURDIR)/$(VENV)/bin:$(LOCAL_BIN):$(HELM_BIN_DIR):$(PATH)
ifeq ($(CLUSTER),kind)
  # kind as cluster/tools.sh builds it, where none is installed; on a machine whose root
  # lacks a capability (CI), Docker through cluster/kind/docker-shim (see its comments)
  KIND_BIN := $(shell bash -c 'source cluster/local/versions.sh && source cluster/kind/versions.sh && echo $$KIND_BIN_DIR')
  export PATH := $(PATH):$(KIND_BIN)
  ifeq ($(shell bash cluster/kind/docker-shim/needed && echo yes),yes)
    export PATH := $(CURDIR)/cluster/kind/docker-shim:$(PATH)
  endif
endif
# The kind node image: the pinned upstream one by default; `make test-kind` builds its own.
export KIND_NODE_IMAGE
# The kind cluster's name: the learner's by default; `make test-kind` uses its own.
export COURSE_KIND_CLUSTER

.PHONY: help setup docker images cluster cluster-down cluster-status lab test test-kind lint unit \
        classroom classroom-down \
        exercises grade doctor bench clean clean-grading

help: ## list the commands
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-15s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@echo " • Creating the Python environment in $(VENV) (first time: 2-4 minutes)"
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@$(PY) -m pip install --quiet --upgrade pip
	@$(PY) -m pip install --progress-bar off -e '.[test]' | \
	  grep --line-buffered -E '^(Collecting|Successfully)' | sed -u 's/^/   /'
	@touch $@
	@echo " ✓ Python environment ready"

setup: $(VENV)/.installed ## create the Python environment (once)

docker: ## make sure a Docker engine answers (starts dockerd on Linux as root)
	@bash cluster/local/runtime.sh

images: setup docker ## build the course images and load them into the cluster
	@$(PY) -m helpers images $(if $(filter kubeconfig,$(CLUSTER)),,--load)

cluster: setup docker ## start the cluster (CLUSTER=kind|local|kubeconfig), then load the images
ifeq ($(CLUSTER),kind)
	@bash cluster/kind.sh up
	@bash cluster/registry.sh up kind
else ifeq ($(CLUSTER),local)
	@bash cluster/local/up.sh
	@bash cluster/registry.sh up local
else
	@kubectl version >/dev/null && echo " ✓ the current kubeconfig context answers" || \
	  { echo " ✗ the current kubeconfig context does not answer"; exit 1; }
endif
	@bash cluster/tools.sh helm
	@$(MAKE) --no-print-directory images

cluster-down: ## stop and delete the cluster
ifeq ($(CLUSTER),kind)
	@bash cluster/kind.sh down
else ifeq ($(CLUSTER),local)
	@bash cluster/local/down.sh
endif
	@bash cluster/registry.sh down

cluster-status: ## show the cluster's nodes and control-plane health
ifeq ($(CLUSTER),kind)
	@bash cluster/kind.sh status
else
	@kubectl get nodes -o wide && kubectl get --raw '/readyz?verbose' | tail -n 3
endif

# JupyterLab refuses root unless told; with no display there is no browser to open.
LAB_PORT ?= 8888
LAB_FLAGS := --ip=127.0.0.1 --port=$(LAB_PORT) --notebook-dir=.
ifeq ($(shell id -u),0)
  LAB_FLAGS += --allow-root
endif
ifeq ($(DISPLAY)$(WAYLAND_DISPLAY)$(filter Darwin,$(shell uname -s)),)
  LAB_FLAGS += --no-browser
endif

lab: cluster ## set everything up and open the course in JupyterLab (LAB_PORT=8888)
	@echo " ✓ Ready. JupyterLab serves the course on http://127.0.0.1:$(LAB_PORT)/ (Ctrl+C to stop)"
	@$(VENV)/bin/jupyter lab $(LAB_FLAGS) course/01-containers.ipynb

lint: setup ## formatting, lint and types: ruff and mypy
	@$(VENV)/bin/ruff format --check .
	@$(VENV)/bin/ruff check .
	@$(VENV)/bin/mypy

unit: setup ## the fast tests only (no Docker, no cluster)
	@$(PY) -m pytest -m "not docker and not cluster and not slow and not browser" -q

test: lint cluster ## the whole suite, exactly what CI runs
	@$(PY) -m pytest -q -ra --durations=15

# kind with a node image built on this machine (cluster/kind/README.md): a cluster of its own name,
# kubeconfig and volumes folder, so a learner's own kind cluster (cloud-native-course) is never touched
KIND_TEST_CLUSTER := cloud-native-course-test
KIND_TEST_KUBECONFIG := $(COURSE_CACHE)/kind.kubeconfig
KIND_TEST_IMAGE := course/kind-node:$(shell bash -c 'source cluster/local/versions.sh && echo $$K8S_VERSION')
# the cluster tests, then lessons 03 and 07 and their grading round trips (07: the registry as
# kind's nodes reach it); local-only tests skip. (Lessons 04-06 too cost ~+120 s; lesson 04's
# autoscaler did not reach 4 replicas in 120 s once, with four lessons on kind's two nodes.)
KIND_TESTS := tests/test_kind.py tests/test_cluster.py tests/test_addons.py tests/test_notebooks.py \
              tests/test_grading.py -k 'not (test_notebooks or test_grading) or 03-pods or 07-helm'

test-kind: setup docker ## a two-node kind cluster from a node image built here: cluster tests, lessons and grading of 03 and 07
	@bash cluster/tools.sh kind
	@$(MAKE) --no-print-directory CLUSTER=kind KUBECONFIG=$(KIND_TEST_KUBECONFIG) \
	  COURSE_KIND_CLUSTER=$(KIND_TEST_CLUSTER) KIND_NODE_IMAGE=$(KIND_TEST_IMAGE) _test-kind

_test-kind:
	@started=$$SECONDS; bash cluster/kind.sh down >/dev/null; rc=0; \
	{ bash cluster/kind.sh up && bash cluster/registry.sh up kind && bash cluster/tools.sh helm && \
	  $(PY) -m helpers images --load && \
	  $(PY) -m pytest -q -ra --durations=10 $(KIND_TESTS); } || rc=$$?; \
	bash cluster/kind.sh down; \
	echo " $$( [ $$rc = 0 ] && echo ✓ || echo ✗ ) make test-kind: exit $$rc after $$((SECONDS - started)) s"; exit $$rc

exercises: setup ## regenerate exercises/ from solutions/ with nbgrader
	@$(PY) -m helpers release

# Grades what is due in submitted/<student>/<assignment>/ (new, changed, or its grade, autograded/
# or feedback/ lost: README; SUBMISSIONS=folder is copied there first), N at a time; FORCE=1
# grades everything again, STUDENT=id (or "a b") and ASSIGNMENT=name only those, JOBS=n sets N,
# KEEP=1 keeps the students' containers and namespaces, SANDBOX=0 runs the notebooks without the
# bubblewrap sandbox, CLASSROOM=0 with your kubeconfig instead of the students' (make classroom).
# Exit code 3: some submissions could not be graded (the table says which and why).
grade: cluster ## grade the class: feedback, grades.csv (FORCE=1 STUDENT=id ASSIGNMENT= JOBS= KEEP=1)
	@$(PY) -m helpers grade $(SUBMISSIONS) $(if $(filter-out 0,$(FORCE)),--force) \
	  $(foreach s,$(STUDENT),--student $(s)) $(foreach a,$(ASSIGNMENT),--assignment $(a)) \
	  $(if $(JOBS),--jobs $(JOBS)) $(if $(filter-out 0,$(KEEP)),--keep) \
	  $(if $(filter 0,$(SANDBOX)),--no-sandbox) $(if $(filter 0,$(CLASSROOM)),--no-classroom)

# A classroom on the cluster in use: per-student namespaces, quota, limits and a kubeconfig each
# (classroom/<id>/kubeconfig), from a CSV with an id column. make grade then uses those.
classroom: cluster ## per-student namespaces, quotas and kubeconfigs (ROSTER=students.csv)
	@$(PY) -m helpers classroom $(ROSTER)

classroom-down: setup ## remove the classroom: every student's namespaces, accounts and kubeconfigs
	@$(PY) -m helpers classroom --down

doctor: setup ## check that this machine is ready for the course
	@$(PY) -m helpers doctor

bench: cluster ## print benchmark numbers (cluster start, rollout, wait latency, memory, grading; STUDENTS=30)
	@$(PY) -m helpers bench --students $(or $(STUDENTS),30)

# `make clean` keeps what an instructor or learner keeps: submissions, the gradebook, grades,
# feedback and classroom credentials. Deleting grading is `make clean-grading`, which asks.
clean: ## remove your course containers and namespaces, and the Python environment
	-@$(PY) -m helpers cleanup 2>/dev/null
	rm -rf $(VENV)

GRADING_FILES := submitted autograded feedback gradebook.db grades.csv grading
clean-grading: ## DELETE the class's submissions, gradebook, grades and feedback (asks first; CONFIRM=yes)
	@found="$$(for f in $(GRADING_FILES); do [ -e "$$f" ] && printf ' %s' "$$f"; done)"; \
	if [ -z "$$found" ]; then echo " ✓ nothing to delete: no grading files here"; exit 0; fi; \
	echo " ! This deletes, for good:$$found"; \
	if [ "$(CONFIRM)" != yes ]; then \
	  if [ -t 0 ]; then read -r -p "   Type yes to delete them: " answer; else answer=; fi; \
	  if [ "$$answer" != yes ]; then \
	    echo " ✗ nothing deleted (type yes, or run make clean-grading CONFIRM=yes)"; exit 1; fi; \
	fi; \
	rm -rf $(GRADING_FILES) && echo " ✓ deleted:$$found (classroom/ stays: make classroom-down)"
