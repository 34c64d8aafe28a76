# fuzz: libFuzzer targets that also build as plain replay drivers
