//! The tables a seed draws from: names, companies, countries, service
//! types and processing modules, and the fixed epoch dates derive from.

pub(super) const EPOCH: i64 = 1_609_459_200;
pub(super) const DAY: i64 = 86_400;

pub(super) const FIRST: &[&str] = &[
    "Ivan",
    "Olga",
    "Sergey",
    "Anna",
    "Dmitry",
    "Maria",
    "John",
    "Emma",
    "Łukasz",
    "Søren",
    "Иван",
    "Ольга",
    "Сергей",
    "Анна",
    "Дмитрий",
    "Мария",
    "Jürgen",
    "Zoë",
];
pub(super) const LAST: &[&str] = &[
    "Petrov",
    "Ivanova",
    "Smith",
    "Brown",
    "Kowalski",
    "Müller",
    "Петров",
    "Иванова",
    "Смирнов",
    "Кузнецова",
    "O'Brien",
    "Nørgaard",
];
pub(super) const COMPANY: &[&str] = &[
    "ООО «Ромашка»",
    "Acme Ltd",
    "\"Quote\" Hosting",
    "Back\\slash LLC",
    "Tab\tSeparated Inc",
    "ИП Сидоров",
    "Blåbær AS",
    "Cloud 🚀 Start",
    "NULL",
    "",
];
pub(super) const COUNTRIES: &[&str] = &["RU", "US", "DE", "KZ", "PL", "NO", "GB"];

/// (itemtype intname, display name, processing module ids, parameter names)
pub(super) const TYPES: &[(&str, &str, &[u64], &[&str])] = &[
    (
        "vds",
        "Virtual server",
        &[1, 2],
        &["ostempl", "ip", "hostname", "ram", "cpu", "disk"],
    ),
    (
        "vhost",
        "Shared hosting",
        &[3],
        &["domain", "username", "ip", "diskquota"],
    ),
    (
        "domain",
        "Domain",
        &[4],
        &["domain", "ns1", "ns2", "auth_code"],
    ),
    (
        "dedic",
        "Dedicated server",
        &[5],
        &["hostname", "ip", "ipmi_ip", "config"],
    ),
    (
        "certificate",
        "SSL certificate",
        &[6],
        &["domain", "csr", "approver_email"],
    ),
];

/// (name, module, url)
pub(super) const MODULES: &[(&str, &str, &str)] = &[
    ("VMmanager #1", "pmvmmanager6", "https://vm1.example.net/vm"),
    ("VMmanager #2", "pmvmmanager6", "https://vm2.example.net/vm"),
    (
        "ISPmanager hosting",
        "pmispmgr",
        "https://hosting.example.net/ispmgr",
    ),
    ("Registrar", "pmregistrar", "https://api.registrar.example"),
    ("Dedicated servers", "pmmanual", ""),
    ("SSL store", "pmcertificate", "https://ssl.example.com/api"),
];
