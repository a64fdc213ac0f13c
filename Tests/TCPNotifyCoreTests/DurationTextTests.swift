import Testing
@testable import TCPNotifyCore

/// The one duration grammar (`DurationText`): every form, every refusal, the limits of 64-bit
/// nanoseconds, and the rule language and config files reading durations through it.
@Suite struct DurationTextTests {
    static let good: [(text: String, nanoseconds: UInt64)] = [
        ("500ms", 500_000_000),
        ("2s", 2_000_000_000),
        ("1m", 60_000_000_000),
        ("1min", 60_000_000_000),
        ("1h", 3_600_000_000_000),
        ("1h30m", 5_400_000_000_000),
        ("2m30s", 150_000_000_000),
        ("1s500ms", 1_500_000_000),
        ("1h1min1s1ms1us", 3_661_001_001_000),
        ("250us", 250_000),
        ("250µs", 250_000),   // micro sign U+00B5
        ("250μs", 250_000),   // Greek mu U+03BC
        ("1.5s", 1_500_000_000),
        ("1.5h", 5_400_000_000_000),
        ("0.5ms", 500_000),
        ("1.5us", 1500),
        ("1.500000000000000000000s", 1_500_000_000),  // trailing zeros are not digits that count
        ("0.000000001s", 1),
        ("0.0000000004s", 0),  // below a nanosecond: rounded to the nearest
        ("0.0000000005s", 1),  // halves up
        ("0s", 0),
        ("0ms", 0),
        ("007s", 7_000_000_000),
        ("18446744073709551us", 18_446_744_073_709_551_000),
        ("5124095h34m33s", 18_446_744_073_000_000_000),
    ]

    @Test func everyForm() throws {
        for (text, nanoseconds) in Self.good {
            let duration = try DurationText.parse(text)
            #expect(duration.nanoseconds == nanoseconds, "\(text)")
            #expect(duration.text == text, "the text as written is kept for messages")
            #expect(try DurationText.parse(text, plainNumbers: .seconds) == duration, "units win over plain seconds: \(text)")
        }
    }

    @Test func plainNumbersAreSecondsOnlyWhereAllowed() throws {
        #expect(try DurationText.parse("5", plainNumbers: .seconds).nanoseconds == 5_000_000_000)
        #expect(try DurationText.parse("2.5", plainNumbers: .seconds).nanoseconds == 2_500_000_000)
        #expect(try DurationText.parse("0", plainNumbers: .seconds).nanoseconds == 0)
        #expect(try DurationText.parse("0.001", plainNumbers: .seconds).nanoseconds == 1_000_000)
        #expect(throws: DurationText.Failure(text: "5", reason: .missingUnit(number: "5"))) { try DurationText.parse("5") }
        // A unit on part of it makes every part need one.
        #expect(throws: DurationText.Failure(text: "1m30", reason: .missingUnit(number: "30"))) {
            try DurationText.parse("1m30", plainNumbers: .seconds)
        }
    }

    static let bad: [(text: String, reason: DurationText.Failure.Reason, fragment: String)] = [
        ("", .empty, "empty duration"),
        ("-5", .negative, "'-5' is negative"),
        ("-1s", .negative, "negative"),
        ("-", .notANumber, "not a duration"),
        ("--verbose", .notANumber, "'--verbose' is not a duration"),  // an option taken as the value
        ("abc", .notANumber, "'abc' is not a duration"),
        (".5s", .notANumber, "not a duration"),
        ("1.s", .notANumber, "not a duration"),
        ("1..5s", .notANumber, "not a duration"),
        ("s", .notANumber, "not a duration"),
        ("1h30", .missingUnit(number: "30"), "'30' in '1h30' needs a time unit"),
        ("2", .missingUnit(number: "2"), "'2' needs a time unit"),
        ("5x", .unknownUnit("x"), "unknown time unit 'x' in '5x'"),
        ("3d", .unknownUnit("d"), "unknown time unit 'd'"),
        ("5sec", .unknownUnit("sec"), "did you mean 's'?"),
        ("5MS", .unknownUnit("MS"), "did you mean 'ms'?"),
        ("2hours", .unknownUnit("hours"), "did you mean 'h'?"),
        ("1h 30m", .unknownUnit("h "), "unknown time unit 'h '"),
        ("5Mbit", .notATimeUnit("Mbit", dimension: "a rate"), "'Mbit' is a rate, not a time unit"),
        ("4KB", .notATimeUnit("KB", dimension: "a size"), "'KB' is a size, not a time unit"),
        ("5%", .notATimeUnit("%", dimension: "a percentage"), "not a time unit"),
        ("30m1h", .unitOrder("h"), "'h' is out of order in '30m1h'"),
        ("1s1s", .unitOrder("s"), "from the largest to the smallest, each once"),
        ("1m1min", .unitOrder("min"), "out of order"),
        ("1.0000000000000000001s", .tooManyFractionDigits, "too many digits after the point"),
        ("18446744073709551616s", .tooLarge, "is too long"),     // the number itself exceeds 64 bits
        ("18446744073709552us", .tooLarge, "is too long"),       // the nanoseconds do
        ("5124096h", .tooLarge, "is too long"),
        ("5124095h34m34s", .tooLarge, "is too long"),            // only the sum does
    ]

    @Test func badInputsSayWhatIsWrongAndWhatIsAccepted() {
        for (text, reason, fragment) in Self.bad {
            do {
                let duration = try DurationText.parse(text)
                Issue.record("'\(text)' parsed as \(duration.nanoseconds) ns")
            } catch {
                #expect(error.reason == reason, "\(text): \(error.reason)")
                #expect(error.problem.contains(fragment), "\(text): \(error.problem)")
                #expect(error.description.hasPrefix(error.problem))
                #expect(error.description.contains("500ms, 2s, 1m, 1h30m"), "the accepted forms: \(error.description)")
            }
        }
    }

    @Test func noGuessForOneOrTwoLetters() {
        #expect(DurationText.suggestion(for: "x") == nil)
        #expect(DurationText.suggestion(for: "MIN") == "min")
        #expect(DurationText.suggestion(for: "secs") == "s")
    }

    @Test func formatParsesBack() throws {
        #expect(DurationText.format(nanoseconds: 0) == "0s")
        #expect(DurationText.format(nanoseconds: 5_400_000_000_000) == "1h30m")
        #expect(DurationText.format(nanoseconds: 1_500_000_000) == "1s500ms")
        #expect(DurationText.format(nanoseconds: 250_000) == "250us")
        #expect(DurationText.format(nanoseconds: 1500) == "1.5us")
        #expect(DurationText.format(nanoseconds: 1_000_000_001) == "1000000.001us")
        #expect(TimeSpan.seconds(3600).text == "1h")
        #expect(TimeSpan.milliseconds(1).text == "1ms")
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let nanoseconds = UInt64.random(in: 0...UInt64.max, using: &generator) >> UInt64.random(in: 0...63, using: &generator)
            let text = DurationText.format(nanoseconds: nanoseconds)
            #expect(try DurationText.parse(text).nanoseconds == nanoseconds, "\(nanoseconds) as \(text)")
        }
    }

    @Test func wholeMillisecondsRoundToTheNearest() {
        #expect(TimeSpan(nanoseconds: 1_499_999).milliseconds == 1)
        #expect(TimeSpan(nanoseconds: 1_500_000).milliseconds == 2)
        #expect(TimeSpan(nanoseconds: UInt64.max).milliseconds == UInt64.max / 1_000_000 + 1)
        #expect(TimeSpan.seconds(2) < TimeSpan.milliseconds(2001))
        #expect(TimeSpan(nanoseconds: 1000, text: "1us") == TimeSpan(nanoseconds: 1000, text: "1µs"))
    }

    // MARK: - The rule language reads the same grammar

    @Test func ruleControlsAndWindowsTakeEveryForm() throws {
        let compiled = try RuleExpression.compile([
            "a=rtt > 5ms for 1h30m every 2m30s", "b=increase(total_retrans, 1m30s) > 1", "c=rtt > 5ms for 1.5s",
            "d=rtt > 5ms every 1500us", "e=rtt > 5ms for 2000µs",
        ])
        #expect(compiled.rules[0].control == RuleControl(forMilliseconds: 5_400_000, everyMilliseconds: 150_000))
        #expect(compiled.windows.map(\.widthNanoseconds) == [90_000_000_000])
        #expect(compiled.rules[2].control == RuleControl(forMilliseconds: 1500))
        #expect(compiled.rules[3].control == RuleControl(everyMilliseconds: 2), "1.5ms rounds to 2ms, as before")
        #expect(compiled.rules[4].control == RuleControl(forMilliseconds: 2))
    }

    @Test func ruleValuesTakeMicroseconds() throws {
        let compiled = try RuleExpression.compile(["min_rtt < 200µs", "min_rtt < 200μs"])
        #expect(compiled.terms.map(\.value) == [200], "both spellings are the same term")
    }

    static let badRuleDurations: [(text: String, fragment: String)] = [
        ("rtt > 5ms for 30m1h", "'h' is out of order in '30m1h'"),
        ("rtt > 5ms for 1h30", "a duration needs a unit: '1h30' of what?"),
        ("rtt > 5ms for 50d", "unknown unit 'd'"),
        ("rtt > 5ms for 1h30x", "unknown unit 'x'"),
        ("rtt > 5ms for 1200h", "is too long (at most 4294967295ms, about 49 days)"),
        ("rtt > 5ms for 99999999999999999999s", "is too long"),
        ("rtt > 5ms for 400us", "shorter than 1ms"),
        ("rtt > 5ms for 1KB", "unit 'KB' is a size, not a duration"),
    ]

    @Test func badRuleDurationsAreReportedAtTheDuration() {
        for (text, fragment) in Self.badRuleDurations {
            do {
                _ = try RuleExpression.compile([text])
                Issue.record("compiled '\(text)'")
            } catch {
                #expect(error.message.contains(fragment), "\(text): \(error.message)")
                #expect(error.position == 14, "\(text): at \(error.position)")
            }
        }
    }

    // MARK: - Config files read the same grammar

    @Test func configDurationsAreCheckedAtTheirLine() throws {
        func rule(for duration: String) -> ConfigNode {
            ConfigNode(.map([ConfigEntry(key: "rules", value: ConfigNode(.list([
                ConfigNode(.map([
                    ConfigEntry(key: "when", value: ConfigNode(.scalar("rtt > 5ms"), line: 3), line: 3),
                    ConfigEntry(key: "for", value: ConfigNode(.scalar(duration), line: 4), line: 4),
                ]), line: 3),
            ]), line: 2), line: 2)]), line: 1)
        }
        let settings = try ConfigSettings.read(rule(for: "1h30m"))
        #expect(settings.rules == ["rtt > 5ms for 1h30m"])
        #expect(try settings.compileRules().rules[0].control == RuleControl(forMilliseconds: 5_400_000))
        for (duration, fragment) in [("2", "'2' needs a time unit"), ("2 s", "unknown time unit ' s'"), ("-1s", "negative")] {
            do {
                _ = try ConfigSettings.read(rule(for: duration))
                Issue.record("read 'for: \(duration)'")
            } catch {
                #expect(error.line == 4, "\(duration): \(error)")
                #expect(error.message.hasPrefix("'for': "), "\(duration): \(error)")
                #expect(error.message.contains(fragment), "\(duration): \(error)")
            }
        }
    }
}
