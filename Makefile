# engagiert: the front door. `make up` brings the platform up; `make test` runs every test.
# Both do all set-up on a fresh machine (Java 17, Go, Python 3.11 must be there; Keycloak takes a Java 21+).

SHELL := /bin/bash
.DEFAULT_GOAL := help
STACK := bash deploy/local/stack.sh
PY := .venv/bin/python
# The test environment: the local stack's endpoints unless KAFKA_BOOTSTRAP_SERVERS/MONGODB_URL are set.
STACK_ENV = eval "$$($(STACK) env)";

.PHONY: help bootstrap up down status logs clean distclean lint format test test-unit test-integration bench fuzz demo schemas helm-check images-check token token-local systems system-connect system-revoke

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-18s %s\n", $$1, $$2}'

bootstrap: ## install uv and the locked Python dependencies into .venv
	@bash tools/bootstrap.sh

up: bootstrap ## start Kafka, the store, Mailpit, Keycloak, the three services and the console; returns when all are healthy
	@$(STACK) up
	@$(STACK) services-up
	@echo
	@echo "engagiert is up:"
	@echo "  registry       http://127.0.0.1:$${REGISTRY_PORT:-8001}/docs   AsyncAPI: /asyncapi"
	@echo "  events         http://127.0.0.1:$${EVENTS_PORT:-8002}/docs   AsyncAPI: /asyncapi"
	@echo "  notifications  http://127.0.0.1:$${NOTIFICATIONS_PORT:-8003}/docs   AsyncAPI: /asyncapi"
	@echo "  console        http://127.0.0.1:$${CONSOLE_PORT:-8000}/   users (password engagiert): paderborn-staff, paderborn-reader, bielefeld-staff, owl-staff, network-admin"
	@echo "  mail (Mailpit) http://127.0.0.1:$${MAILPIT_HTTP_PORT:-8025}/  (SMTP 127.0.0.1:$${SMTP_PORT:-1025})"
	@echo "  sign-in        http://127.0.0.1:$${KEYCLOAK_PORT:-8080}/realms/engagiert  (Keycloak; local users: deploy/local/README.md)"
	@echo "  a staff token: make token"

down: ## stop the services and the stack
	@$(STACK) down

status: ## show what runs
	@$(STACK) status

logs: ## tail the logs (make logs NAME=registry)
	@$(STACK) logs $(NAME)

clean: ## stop everything and wipe the data folder (.stack/data)
	@$(STACK) clean

distclean: ## also remove the built stack binaries and jars
	@$(STACK) distclean

token: bootstrap ## print an access token from the local Keycloak (AGS=05774032 ROLE=staff, or LOGIN=<local user>)
	@$(PY) -m engagiert.shared.auth token --municipality $${AGS:-05774032} --role $${ROLE:-staff} $${LOGIN:+--user $$LOGIN}

token-local: bootstrap ## print a token signed with the local key instead (no Keycloak; refused in production)
	@$(PY) -m engagiert.shared.auth mint --municipality $${AGS:-05774032} --role $${ROLE:-staff}

systems: bootstrap ## list the connected systems (with the local stack's operator credentials)
	@$(STACK_ENV) $(PY) -m engagiert.registry.systems list

system-connect: bootstrap ## connect a system: NAME=... AGS="05711000 ..." MAY="register-members report-hours" (prints its secret once; JSON=1)
	@$(STACK_ENV) $(PY) -m engagiert.registry.systems connect --name "$(NAME)" $(foreach a,$(AGS),--municipality $(a)) $(foreach m,$(MAY),--may $(m)) $(if $(JSON),--json)

system-revoke: bootstrap ## revoke a connected system: NAME=... (its Kafka user and ACLs go, later commands are refused)
	@$(STACK_ENV) $(PY) -m engagiert.registry.systems revoke --name "$(NAME)"

lint: bootstrap ## ruff (lint + format check) and mypy
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy shared/src services/registry/src services/events/src services/notifications/src services/console/src

format: bootstrap ## format the code
	.venv/bin/ruff format .
	.venv/bin/ruff check --fix .

schemas: bootstrap ## regenerate the JSON Schemas of the event contracts
	$(PY) -m engagiert.shared.schemas

test: bootstrap ## start the stack if needed and run every test (unit, integration, faults)
	@$(STACK) up
	@$(STACK_ENV) .venv/bin/pytest $(PYTEST_ARGS)

test-unit: bootstrap ## only the tests that need no stack
	.venv/bin/pytest -m "not integration and not faults" $(PYTEST_ARGS)

bench: bootstrap ## measure throughput and latency on the real stack; prints a table, writes bench-results/
	@$(STACK) up
	@$(STACK_ENV) $(PY) -m tests.bench.run $(BENCH_ARGS)

fuzz: bootstrap ## fuzz the running services' APIs with Schemathesis (FUZZ_SECONDS=120 each, FUZZ_SEED); prints the figures
	$(PY) tools/fuzz.py

demo: up ## seed Paderborn with organisations and a few hundred members and walk the journey
	$(PY) tools/demo.py

helm-check: bootstrap ## lint, render and validate the Helm chart offline
	bash deploy/helm/check.sh

images-check: bootstrap ## lint the Dockerfiles and replay their install and entrypoint steps in a clean venv
	@$(STACK) up
	@$(STACK_ENV) bash deploy/check-images.sh
