# modelgov: `make demo` runs the whole pipeline on embedded defaults; `make test` runs the test suite.
# Both create what they need (.venv, the serving venv, the example model) when it is missing.

PYTHON ?= python3
VENV := .venv
SERVING_VENV := .venv-mlserver
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
SERVING_STAMP := $(SERVING_VENV)/.installed
EXAMPLE_MODEL := staging_template/example/executable/model.joblib
SPARK_STAMP := $(VENV)/.spark-installed
KERBEROS_STAMP := $(VENV)/.kerberos-installed
MLFLOW_VENV := .venv-mlflow
MLFLOW_STAMP := $(MLFLOW_VENV)/.installed
# MLflow 3.17.2 is what mlserver-mlflow 1.7.1 resolves to; the test venv that logs models uses the same
# MLflow and scikit-learn, so what it writes is what the serving runtime reads.
MLFLOW_PINS := mlflow==3.17.2 scikit-learn==1.9.1 boto3
MLSERVER_PINS := mlserver==1.7.1 mlserver-sklearn==1.7.1 mlserver-mlflow==1.7.1 mlflow==3.17.2 scikit-learn==1.9.1 'uvloop<0.22'

export PREFECT_HOME ?= $(CURDIR)/.modelgov/prefect
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS ?= 120
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export DO_NOT_TRACK ?= 1
export MODELGOV_MLSERVER ?= $(CURDIR)/$(SERVING_VENV)/bin/mlserver

.PHONY: spark kerberos-env demo demo-real java-tools gnu-time kerberos postgresql test test-fast lint bench profile example serving-env mlflow-env venv ceph chromium clean

venv: $(STAMP)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,bench]'
	touch $@

# The spark extra (PySpark, pandas, pyarrow, scikit-learn) in modelgov's own environment: the Spark target's driver
# runs in the modelgov process and its Python workers run the same interpreter.
spark: $(SPARK_STAMP)
$(SPARK_STAMP): $(STAMP) pyproject.toml
	$(VENV)/bin/pip install --quiet -e '.[test,bench,spark]'
	touch $@

# The kerberos extra (requests-gssapi on python-gssapi, built against MIT krb5's headers): for the secured-cluster
# tests and users of Kerberized clusters; make demo does not need it (nor root for its Debian packages).
kerberos-env: $(KERBEROS_STAMP)
$(KERBEROS_STAMP): $(STAMP) pyproject.toml | kerberos
	$(VENV)/bin/pip install --quiet -e '.[test,bench,kerberos]'
	touch $@

# MLServer gets its own environment: its pins conflict with Prefect's (in one env pip falls back to MLServer 1.2.1).
serving-env: $(SERVING_STAMP)
$(SERVING_STAMP):
	$(PYTHON) -m venv $(SERVING_VENV)
	$(SERVING_VENV)/bin/pip install --quiet --upgrade pip
	$(SERVING_VENV)/bin/pip install --quiet $(MLSERVER_PINS)
	touch $@

# A real MLflow tracking server and the scripts that log models run from their own venv (tests only):
# MLflow is heavy and must not enter modelgov's environment, which talks to the server over REST.
mlflow-env: $(MLFLOW_STAMP)
$(MLFLOW_STAMP):
	$(PYTHON) -m venv $(MLFLOW_VENV)
	$(MLFLOW_VENV)/bin/pip install --quiet --upgrade pip
	$(MLFLOW_VENV)/bin/pip install --quiet $(MLFLOW_PINS)
	touch $@

# The example model is trained with the serving env's scikit-learn, so the pickle matches what serves it.
example: $(EXAMPLE_MODEL)
$(EXAMPLE_MODEL): staging_template/example/code/train.py $(SERVING_STAMP)
	$(SERVING_VENV)/bin/python staging_template/example/code/train.py

# Ceph radosgw: the real S3 server the S3 registry tests run against (Debian packages; needs root).
ceph:
	@command -v radosgw >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends radosgw ceph-mon ceph-osd >/dev/null; }

# Headless Chromium: the HTML audit report test renders the page and checks what a person sees (Debian package).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; }

# PostgreSQL: the shared Prefect server's database in the worker, approval and push-trigger tests (Debian package;
# testbed/prefect_server.py runs its own cluster in a temp folder, the packaged service is not used).
postgresql:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends postgresql >/dev/null; }

# MIT Kerberos: the real KDC of the secured-cluster tests (python -m testbed kdc: krb5kdc, kdb5_util, kadmin.local,
# kinit) and libkrb5-dev, which the kerberos extra's gssapi builds against (Debian packages).
kerberos:
	@{ command -v krb5kdc >/dev/null 2>&1 || test -x /usr/sbin/krb5kdc; } && test -f /usr/include/gssapi/gssapi.h || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends krb5-kdc krb5-admin-server \
	    krb5-user libkrb5-dev >/dev/null; }

# GNU time: the file registry's peak-RSS baseline (cp + sha256sum) is measured with /usr/bin/time -f %M.
gnu-time:
	@test -x /usr/bin/time || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends time >/dev/null; }

# Java 17 + Maven run the real HDFS (testbed/java/hdfs); the machines have them, a bare Debian gets them here.
java-tools:
	@command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends openjdk-17-jdk-headless maven >/dev/null; }

demo: venv example
	@mkdir -p $(PREFECT_HOME)
	$(PY) -m demo.local

# The same pipeline on real services: a real HDFS registry (Hadoop MiniDFSCluster; Java 17 + Maven fetch its
# jars on the first run), a real MLServer, and the Atlas service MODELGOV_DEMO_ATLAS (default atlas, a real Apache Atlas).
demo-real: venv spark example java-tools
	@mkdir -p $(PREFECT_HOME)
	$(PY) -m demo.real

test: venv spark kerberos-env example ceph java-tools chromium postgresql mlflow-env
	@mkdir -p $(PREFECT_HOME)
	$(PY) -m pytest -q

test-fast: venv example
	@mkdir -p $(PREFECT_HOME)
	$(PY) -m pytest -q -m "not slow"

lint: venv
	$(VENV)/bin/ruff check .

# Benchmarks against what users would pick instead (bench/README.md); run on an idle machine, about 65 minutes.
bench: venv spark example ceph java-tools postgresql mlflow-env gnu-time
	@mkdir -p $(PREFECT_HOME)
	$(PY) -m bench

# Where one warm deploy spends its time (pyinstrument call tree)
profile: venv example postgresql
	@mkdir -p $(PREFECT_HOME)
	$(PY) -m bench.profile_deploy

clean:
	rm -rf .modelgov staging_template/example/executable/model.joblib staging_template/example/data staging_template/example/examples
