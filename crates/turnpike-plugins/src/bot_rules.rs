//! The pure logic of Kong's `bot-detection` plugin (`kong/plugins/bot-detection/handler.lua`
//! and `rules.lua`): the built-in bot list, the `allow` / `deny` lists and their precedence.
//!
//! Facts reproduced here:
//! - No `User-Agent` header: the request passes (nothing is examined). More than one
//!   `User-Agent` header: 400 `Only one User-Agent header allowed`.
//! - The value is stripped of leading/trailing ASCII whitespace (space, `\t`..`\r`) first.
//! - `allow` is checked first and wins over everything (even the built-in list); then `deny`;
//!   then Kong's built-in bot list. Any `deny` or bot match is answered 403 `Forbidden`
//!   (`kong.response.error(403)`, default message).
//! - Every pattern is unanchored (`ngx.re.find(ua, rule, "jo")`) and PCRE runs in non-UTF mode,
//!   so `\d`, `\w`, `\b` and `(?i)` are ASCII-only and `.` matches any byte but `\n`; the sets
//!   are compiled as byte regexes with Unicode off to match that.
//!
//! Limitation: patterns are compiled with the `regex` crate, so PCRE-only syntax (look-around,
//! back-references, possessive quantifiers) in `allow` / `deny` is rejected at construction.
//!
//! Depends on `regex` only; all regexes are compiled in [`BotDetector::new`].

use std::sync::OnceLock;

use regex::bytes::{RegexSet, RegexSetBuilder};

/// Status Kong answers a denied or bot User-Agent with.
pub const FORBIDDEN_STATUS: u16 = 403;

/// Message of that answer (`kong.response.error(403)` without a message).
pub const FORBIDDEN_MESSAGE: &str = "Forbidden";

/// Status Kong answers a request carrying several `User-Agent` headers with.
pub const MULTIPLE_USER_AGENTS_STATUS: u16 = 400;

/// Message of that answer.
pub const MULTIPLE_USER_AGENTS_MESSAGE: &str = "Only one User-Agent header allowed";

/// Kong's built-in bot list (`kong/plugins/bot-detection/rules.lua`, itself taken from
/// ua-parser's `regexes.yaml`), in Kong's order.
pub const BOT_RULES: &[&str] = &[
    // Pingdom
    r#"(Pingdom\.com_bot_version_)(\d+)\.(\d+)"#,
    // Facebook
    r#"(facebookexternalhit)/(\d+)\.(\d+)"#,
    // Google Plus
    r#"Google.*/\+/web/snippet"#,
    // Twitter
    r#"(Twitterbot)/(\d+)\.(\d+)"#,
    // AWS S3 Clients
    r#"\b(Boto3?|JetS3t|aws-(?:cli|sdk-(?:cpp|go|java|nodejs|ruby2?|dotnet-(?:\d{1,2}|core)))|s3fs)/(\d+)\.(\d+)(?:\.(\d+)|)"#,
    // PTST / WebPageTest.org crawlers
    r#" PTST/\d+(?:\.)?\d+$"#,
    // Bots Pattern '/name-0.0'
    r#"/((?:Ant-)?Nutch|[A-z]+[Bb]ot|[A-z]+[Ss]pider|Axtaris|fetchurl|Isara|ShopSalad|Tailsweep)[ \-](\d+)(?:\.(\d+)(?:\.(\d+))?)?"#,
    // Bots Pattern 'name/0.0'
    r#"\b(008|Altresium|Argus|BaiduMobaider|BoardReader|DNSGroup|DataparkSearch|EDI|Goodzer|Grub|INGRID|Infohelfer|LinkedInBot|LOOQ|Nutch|OgScrper|PathDefender|Peew|PostPost|Steeler|Twitterbot|VSE|WebCrunch|WebZIP|Y!J-BR[A-Z]|YahooSeeker|envolk|sproose|wminer)/(\d+)(?:\.(\d+)|)(?:\.(\d+)|)"#,
    // MSIECrawler
    r#"(MSIE) (\d+)\.(\d+)([a-z]\d|[a-z]|);.* MSIECrawler"#,
    // Downloader ...
    r#"(Google-HTTP-Java-Client|Apache-HttpClient|Go-http-client|scalaj-http|http%20client|Python-urllib|HttpMonitor|TLSProber|WinHTTP|JNLP|okhttp|aihttp|reqwest|axios|unirest-(?:java|python|ruby|nodejs|php|net))(?:[ /](\d+)(?:\.(\d+)|)(?:\.(\d+)|)|)"#,
    // Bots
    r#"(CSimpleSpider|Cityreview Robot|CrawlDaddy|CrawlFire|Finderbots|Index crawler|Job Roboter|KiwiStatus Spider|Lijit Crawler|QuerySeekerSpider|ScollSpider|Trends Crawler|USyd-NLP-Spider|SiteCat Webbot|BotName\/\$BotVersion|123metaspider-Bot|1470\.net crawler|50\.nu|8bo Crawler Bot|Aboundex|Accoona-[A-z]{1,30}-Agent|AdsBot-Google(?:-[a-z]{1,30}|)|altavista|AppEngine-Google|archive.{0,30}\.org_bot|archiver|Ask Jeeves|[Bb]ai[Dd]u[Ss]pider(?:-[A-Za-z]{1,30})(?:-[A-Za-z]{1,30}|)|bingbot|BingPreview|blitzbot|BlogBridge|Bloglovin|BoardReader Blog Indexer|BoardReader Favicon Fetcher|boitho.com-dc|BotSeer|BUbiNG|\b\w{0,30}favicon\w{0,30}\b|\bYeti(?:-[a-z]{1,30}|)|Catchpoint(?: bot|)|[Cc]harlotte|Checklinks|clumboot|Comodo HTTP\(S\) Crawler|Comodo-Webinspector-Crawler|ConveraCrawler|CRAWL-E|CrawlConvera|Daumoa(?:-feedfetcher|)|Feed Seeker Bot|Feedbin|findlinks|Flamingo_SearchEngine|FollowSite Bot|furlbot|Genieo|gigabot|GomezAgent|gonzo1|(?:[a-zA-Z]{1,30}-|)Googlebot(?:-[a-zA-Z]{1,30}|)|Google SketchUp|grub-client|gsa-crawler|heritrix|HiddenMarket|holmes|HooWWWer|htdig|ia_archiver|ICC-Crawler|Icarus6j|ichiro(?:/mobile|)|IconSurf|IlTrovatore(?:-Setaccio|)|InfuzApp|Innovazion Crawler|InternetArchive|IP2[a-z]{1,30}Bot|jbot\b|KaloogaBot|Kraken|Kurzor|larbin|LEIA|LesnikBot|Linguee Bot|LinkAider|LinkedInBot|Lite Bot|Llaut|lycos|Mail\.RU_Bot|masscan|masidani_bot|Mediapartners-Google|Microsoft .{0,30} Bot|mogimogi|mozDex|MJ12bot|msnbot(?:-media {0,2}|)|msrbot|Mtps Feed Aggregation System|netresearch|Netvibes|NewsGator[^/]{0,30}|^NING|Nutch[^/]{0,30}|Nymesis|ObjectsSearch|OgScrper|Orbiter|OOZBOT|PagePeeker|PagesInventory|PaxleFramework|Peeplo Screenshot Bot|PlantyNet_WebRobot|Pompos|Qwantify|Read%20Later|Reaper|RedCarpet|Retreiver|Riddler|Rival IQ|scooter|Scrapy|Scrubby|searchsight|seekbot|semanticdiscovery|SemrushBot|Simpy|SimplePie|SEOstats|SimpleRSS|SiteCon|Slackbot-LinkExpanding|Slack-ImgProxy|Slurp|snappy|Speedy Spider|Squrl Java|Stringer|TheUsefulbot|ThumbShotsBot|Thumbshots\.ru|Tiny Tiny RSS|Twitterbot|WhatsApp|URL2PNG|Vagabondo|VoilaBot|^vortex|Votay bot|^voyager|WASALive.Bot|Web-sniffer|WebThumb|WeSEE:[A-z]{1,30}|WhatWeb|WIRE|WordPress|Wotbox|www\.almaden\.ibm\.com|Xenu(?:.s|) Link Sleuth|Xerka [A-z]{1,30}Bot|yacy(?:bot|)|YahooSeeker|Yahoo! Slurp|Yandex\w{1,30}|YodaoBot(?:-[A-z]{1,30}|)|YottaaMonitor|Yowedo|^Zao|^Zao-Crawler|ZeBot_www\.ze\.bz|ZooShot|ZyBorg)(?:[ /]v?(\d+)(?:\.(\d+)(?:\.(\d+)|)|)|)"#,
    // Bots General matcher 'name/0.0'
    r#"(?:\/[A-Za-z0-9\.]+|) {0,5}([A-Za-z0-9 \-_\!\[\]:]{0,50}(?:[Aa]rchiver|[Ii]ndexer|[Ss]craper|[Bb]ot|[Ss]pider|[Cc]rawl[a-z]{0,50}))[/ ](\d+)(?:\.(\d+)(?:\.(\d+)|)|)"#,
    // Bots General matcher 'name 0.0'
    r#"(?:\/[A-Za-z0-9\.]+|) {0,5}([A-Za-z0-9 \-_\!\[\]:]{0,50}(?:[Aa]rchiver|[Ii]ndexer|[Ss]craper|[Bb]ot|[Ss]pider|[Cc]rawl[a-z]{0,50})) (\d+)(?:\.(\d+)(?:\.(\d+)|)|)"#,
    // Bots containing spider|scrape|bot(but not CUBOT)|Crawl
    r#"((?:[A-z0-9]{1,50}|[A-z\-]{1,50} ?|)(?: the |)(?:[Ss][Pp][Ii][Dd][Ee][Rr]|[Ss]crape|[Cc][Rr][Aa][Ww][Ll])[A-z0-9]{0,50})(?:(?:[ /]| v)(\d+)(?:\.(\d+)|)(?:\.(\d+)|)|)"#,
];

/// What a User-Agent value matched, in Kong's order of precedence (`examine_agent`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UaMatch {
    /// Nothing matched: the request passes.
    Empty,
    /// An `allow` pattern matched: the request passes, whatever else would match.
    Allow,
    /// A `deny` pattern matched: 403.
    Deny,
    /// A built-in bot rule matched: 403.
    Bot,
}

impl UaMatch {
    /// Whether Kong rejects the request (`match > 1`: deny or bot).
    pub fn is_rejected(self) -> bool {
        matches!(self, UaMatch::Deny | UaMatch::Bot)
    }
}

/// The answer for a request, as the plugin glue needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BotVerdict {
    /// Let the request through.
    Pass,
    /// Answer with `kong.response.error(status, message)`.
    Reject {
        /// HTTP status (403 or 400).
        status: u16,
        /// Kong's message.
        message: &'static str,
    },
}

/// A compiled `bot-detection` configuration: `allow`, `deny` and the built-in list, each one
/// `RegexSet` built once.
#[derive(Debug, Clone)]
pub struct BotDetector {
    allow: RegexSet,
    deny: RegexSet,
    bots: RegexSet,
}

fn compile(patterns: &[String], field: &str) -> Result<RegexSet, String> {
    // Compile one by one first so that the error names the offending pattern, in the wording
    // of Kong's `is_regex` validator.
    for (i, p) in patterns.iter().enumerate() {
        build(std::slice::from_ref(p))
            .map_err(|e| format!("{field}[{}]: not a valid regex: {p} ({e})", i + 1))?;
    }
    build(patterns).map_err(|e| format!("{field}: {e}"))
}

fn build<S: AsRef<str>>(patterns: &[S]) -> Result<RegexSet, regex::Error> {
    RegexSetBuilder::new(patterns.iter().map(AsRef::as_ref)).unicode(false).build()
}

/// The built-in set is the same for every configuration: compiled by the first constructor
/// and shared (a `RegexSet` clone shares the compiled program).
fn built_in_bots() -> Result<RegexSet, String> {
    static BOTS: OnceLock<Result<RegexSet, String>> = OnceLock::new();
    BOTS.get_or_init(|| build(BOT_RULES).map_err(|e| format!("built-in bot rules: {e}"))).clone()
}

/// Kong's `strip`: ASCII space and `\t`, `\n`, `\v`, `\f`, `\r` on both ends.
fn strip(value: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| *b == b' ' || (0x09..=0x0d).contains(b);
    let start = value.iter().position(|b| !is_ws(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_ws(b)).map_or(start, |i| i + 1);
    &value[start..end]
}

impl BotDetector {
    /// Compiles `config.allow`, `config.deny` and the built-in list. An invalid pattern yields
    /// `allow[i]: not a valid regex: <pattern> (<reason>)` (1-based index, as Kong counts).
    pub fn new(allow: &[String], deny: &[String]) -> Result<BotDetector, String> {
        Ok(BotDetector {
            allow: compile(allow, "allow")?,
            deny: compile(deny, "deny")?,
            bots: built_in_bots()?,
        })
    }

    /// Kong's `examine_agent` on one User-Agent value (stripped first).
    pub fn examine(&self, user_agent: &[u8]) -> UaMatch {
        let ua = strip(user_agent);
        if self.allow.is_match(ua) {
            UaMatch::Allow
        } else if self.deny.is_match(ua) {
            UaMatch::Deny
        } else if self.bots.is_match(ua) {
            UaMatch::Bot
        } else {
            UaMatch::Empty
        }
    }

    /// Whether Kong answers 403 for this User-Agent: a missing one never is; otherwise `allow`
    /// wins, then `deny` and the built-in list reject.
    pub fn is_bot(&self, user_agent: Option<&str>) -> bool {
        user_agent.is_some_and(|ua| self.examine(ua.as_bytes()).is_rejected())
    }

    /// Kong's `access` phase over all the request's `User-Agent` header values (in order):
    /// none passes, several are 400, one is examined (403 `Forbidden` on deny or bot).
    pub fn verdict<V: AsRef<[u8]>>(&self, user_agent_values: &[V]) -> BotVerdict {
        match user_agent_values {
            [] => BotVerdict::Pass,
            [ua] if self.examine(ua.as_ref()).is_rejected() => {
                BotVerdict::Reject { status: FORBIDDEN_STATUS, message: FORBIDDEN_MESSAGE }
            }
            [_] => BotVerdict::Pass,
            _ => BotVerdict::Reject {
                status: MULTIPLE_USER_AGENTS_STATUS,
                message: MULTIPLE_USER_AGENTS_MESSAGE,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLOWORLD: &str = "HelloWorld";
    const FACEBOOK: &str = "facebookexternalhit/1.1";
    const CHROME: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_11_5) AppleWebKit/537.36 \
                          (KHTML, like Gecko) Chrome/50.0.2661.102 Safari/537.36";

    fn detector(allow: &[&str], deny: &[&str]) -> BotDetector {
        let owned = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        BotDetector::new(&owned(allow), &owned(deny)).unwrap()
    }

    #[test]
    fn built_in_rules_compile_each() {
        for rule in BOT_RULES {
            assert!(build(&[rule]).is_ok(), "{rule}");
        }
        assert_eq!(BOT_RULES.len(), 14);
    }

    #[test]
    fn kong_access_spec() {
        // (allow, deny, user agent, expected) — from spec/03-plugins/21-bot-detection.
        type Case<'a> = (&'a [&'a str], &'a [&'a str], Option<&'a str>, UaMatch);
        let cases: &[Case<'_>] = &[
            (&[], &[], Some(CHROME), UaMatch::Empty),
            (&[], &[], Some(HELLOWORLD), UaMatch::Empty),
            (&[], &[], Some("curl/7.43.0"), UaMatch::Empty),
            (&[], &[], Some("Googlebot/2.1 (+http://www.google.com/bot.html)"), UaMatch::Bot),
            (&[], &[], Some(FACEBOOK), UaMatch::Bot),
            (&[], &[HELLOWORLD], Some(HELLOWORLD), UaMatch::Deny),
            (&[FACEBOOK], &[], Some(FACEBOOK), UaMatch::Allow),
            // allow beats deny and the built-in list.
            (&["Hello"], &[HELLOWORLD], Some(HELLOWORLD), UaMatch::Allow),
            (&["bot"], &[], Some("Googlebot/2.1"), UaMatch::Allow),
            // deny is unanchored and case-sensitive.
            (&[], &["World"], Some(HELLOWORLD), UaMatch::Deny),
            (&[], &["world"], Some(HELLOWORLD), UaMatch::Empty),
            (&[], &["(?i)world"], Some(HELLOWORLD), UaMatch::Deny),
            (&[], &["^HelloWorld$"], Some("  HelloWorld\t"), UaMatch::Deny),
        ];
        for (allow, deny, ua, expected) in cases {
            let d = detector(allow, deny);
            let got = ua.map_or(UaMatch::Empty, |ua| d.examine(ua.as_bytes()));
            assert_eq!(got, *expected, "allow={allow:?} deny={deny:?} ua={ua:?}");
            assert_eq!(d.is_bot(*ua), expected.is_rejected(), "{ua:?}");
        }
    }

    #[test]
    fn built_in_list_samples() {
        let d = detector(&[], &[]);
        let bots = [
            "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)",
            "Twitterbot/1.0",
            "aws-sdk-go/1.44.0 (go1.19; linux; amd64)",
            "Boto3/1.26.0 Python/3.10",
            "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
            "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
            "python-requests/2.28 Scrapy/2.8",
            "Go-http-client/1.1",
            "Apache-HttpClient/4.5.13 (Java/11)",
            "okhttp/4.9.0",
            "axios/1.4.0",
            "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)",
            "WhatsApp/2.23",
            "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
            "my-crawler",
            "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; MSIECrawler)",
        ];
        for ua in bots {
            assert!(d.is_bot(Some(ua)), "{ua}");
        }
        let humans = [
            CHROME,
            "curl/7.43.0",
            "Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0",
            "PostmanRuntime/7.32.2",
            "",
            "   ",
        ];
        for ua in humans {
            assert!(!d.is_bot(Some(ua)), "{ua:?}");
        }
        assert!(!d.is_bot(None));
    }

    #[test]
    fn ascii_only_classes_like_pcre_without_utf() {
        // `\d` does not match a non-ASCII digit (Arabic-Indic one) in PCRE's non-UTF mode.
        let d = detector(&[], &[r"^v\d$"]);
        assert!(d.is_bot(Some("v7")));
        assert!(!d.is_bot(Some("v\u{0667}")));
        // Non-UTF-8 bytes are examined too.
        assert_eq!(d.examine(b"v1"), UaMatch::Deny);
        assert_eq!(detector(&[], &["\\xff"]).examine(b"a\xffb"), UaMatch::Deny);
    }

    #[test]
    fn verdicts() {
        let d = detector(&[], &[HELLOWORLD]);
        let none: [&str; 0] = [];
        assert_eq!(d.verdict(&none), BotVerdict::Pass);
        assert_eq!(d.verdict(&["curl/8.0"]), BotVerdict::Pass);
        assert_eq!(
            d.verdict(&[HELLOWORLD]),
            BotVerdict::Reject { status: 403, message: "Forbidden" }
        );
        assert_eq!(
            d.verdict(&["curl/8.0", "curl/8.0"]),
            BotVerdict::Reject { status: 400, message: "Only one User-Agent header allowed" }
        );
    }

    #[test]
    fn invalid_patterns_are_rejected() {
        let err = BotDetector::new(&["ok".into(), "(".into()], &[]).unwrap_err();
        assert!(err.starts_with("allow[2]: not a valid regex: ("), "{err}");
        let err = BotDetector::new(&[], &["(?<=a)b".into()]).unwrap_err();
        assert!(err.starts_with("deny[1]: not a valid regex: (?<=a)b"), "{err}");
    }
}
