//! What the signing page says around a petition's own wording, in the
//! languages the service speaks to signers (as its notices do); a petition in
//! another language gets these in English.

/// The signing page's words in one language.
#[derive(Debug)]
pub struct PageWords {
    pub language: &'static str,
    /// After the count: "1,204 signatures".
    pub signatures: &'static str,
    /// Before the goal: "Goal: 1,000,000".
    pub goal: &'static str,
    pub progress: &'static str,
    pub addressed_to: &'static str,
    pub form_heading: &'static str,
    pub full_name: &'static str,
    pub email: &'static str,
    pub country: &'static str,
    pub choose: &'static str,
    pub postal_code: &'static str,
    pub city: &'static str,
    pub signing_as: &'static str,
    pub as_person: &'static str,
    pub as_organization: &'static str,
    pub organization: &'static str,
    pub consent: &'static str,
    pub submit: &'static str,
    pub sending: &'static str,
    pub closed: &'static str,
    pub thanks_heading: &'static str,
    /// Followed by the receipt.
    pub thanks_receipt: &'static str,
    /// When the signature counts once the signer confirms it by email.
    pub thanks_confirm: &'static str,
    pub problem_heading: &'static str,
    pub field_required: &'static str,
    pub field_invalid: &'static str,
    pub field_too_long: &'static str,
    pub email_undeliverable: &'static str,
    pub captcha_needed: &'static str,
    pub too_many: &'static str,
    pub unavailable: &'static str,
    pub refused: &'static str,
    /// The widget's link to the hosted page, for a petition whose form
    /// it does not render (a postal code, a city or a captcha).
    pub sign_on_page: &'static str,
}

const EN: PageWords = PageWords {
    language: "en",
    signatures: "signatures",
    goal: "Goal:",
    progress: "Signatures toward the goal",
    addressed_to: "Addressed to",
    form_heading: "Add your name",
    full_name: "Full name",
    email: "Email address",
    country: "Country",
    choose: "Choose…",
    postal_code: "Postal code",
    city: "City",
    signing_as: "I sign as",
    as_person: "a person",
    as_organization: "an organization",
    organization: "Organization's name",
    consent: "Keep me informed about this campaign",
    submit: "Sign",
    sending: "Sending…",
    closed: "This petition is not open for signatures.",
    thanks_heading: "Thank you for signing!",
    thanks_receipt: "Your receipt:",
    thanks_confirm: "One step left: open the message we sent you and follow its link. Your signature counts once you confirm it.",
    problem_heading: "Your signature could not be taken yet:",
    field_required: "Please fill this in.",
    field_invalid: "Please check this: it does not look right.",
    field_too_long: "This is too long.",
    email_undeliverable: "No mail can reach this address.",
    captcha_needed: "Please complete the check that you are not a robot.",
    too_many: "Too many signatures at once. Please try again in a minute.",
    unavailable: "The service is busy. Please try again in a minute.",
    refused: "This signature was refused.",
    sign_on_page: "Sign on the petition's page",
};

const FR: PageWords = PageWords {
    language: "fr",
    signatures: "signatures",
    goal: "Objectif :",
    progress: "Signatures vers l’objectif",
    addressed_to: "Adressée à",
    form_heading: "Ajoutez votre nom",
    full_name: "Nom complet",
    email: "Adresse e-mail",
    country: "Pays",
    choose: "Choisir…",
    postal_code: "Code postal",
    city: "Ville",
    signing_as: "Je signe en tant que",
    as_person: "personne",
    as_organization: "organisation",
    organization: "Nom de l’organisation",
    consent: "Tenez-moi informé·e de cette campagne",
    submit: "Signer",
    sending: "Envoi…",
    closed: "Cette pétition n’est pas ouverte aux signatures.",
    thanks_heading: "Merci d’avoir signé !",
    thanks_receipt: "Votre reçu :",
    thanks_confirm: "Encore une étape : ouvrez le message que nous vous avons envoyé et suivez son lien. Votre signature compte dès que vous la confirmez.",
    problem_heading: "Votre signature n’a pas encore pu être prise :",
    field_required: "Veuillez remplir ce champ.",
    field_invalid: "Veuillez vérifier : cela ne semble pas correct.",
    field_too_long: "C’est trop long.",
    email_undeliverable: "Aucun message ne peut atteindre cette adresse.",
    captcha_needed: "Veuillez compléter la vérification anti-robot.",
    too_many: "Trop de signatures à la fois. Veuillez réessayer dans une minute.",
    unavailable: "Le service est occupé. Veuillez réessayer dans une minute.",
    refused: "Cette signature a été refusée.",
    sign_on_page: "Signer sur la page de la pétition",
};

const RU: PageWords = PageWords {
    language: "ru",
    signatures: "подписей",
    goal: "Цель:",
    progress: "Подписи на пути к цели",
    addressed_to: "Адресат",
    form_heading: "Добавьте своё имя",
    full_name: "Полное имя",
    email: "Адрес электронной почты",
    country: "Страна",
    choose: "Выберите…",
    postal_code: "Почтовый индекс",
    city: "Город",
    signing_as: "Я подписываю как",
    as_person: "частное лицо",
    as_organization: "организация",
    organization: "Название организации",
    consent: "Сообщайте мне новости этой кампании",
    submit: "Подписать",
    sending: "Отправка…",
    closed: "Эта петиция сейчас не принимает подписи.",
    thanks_heading: "Спасибо за подпись!",
    thanks_receipt: "Ваша квитанция:",
    thanks_confirm: "Остался один шаг: откройте наше письмо и перейдите по ссылке. Подпись будет учтена после подтверждения.",
    problem_heading: "Вашу подпись пока не удалось принять:",
    field_required: "Заполните это поле.",
    field_invalid: "Проверьте: здесь что-то не так.",
    field_too_long: "Слишком длинно.",
    email_undeliverable: "На этот адрес нельзя доставить письмо.",
    captcha_needed: "Пройдите проверку, что вы не робот.",
    too_many: "Слишком много подписей одновременно. Попробуйте через минуту.",
    unavailable: "Сервис занят. Попробуйте через минуту.",
    refused: "Эта подпись отклонена.",
    sign_on_page: "Подписать на странице петиции",
};

const TR: PageWords = PageWords {
    language: "tr",
    signatures: "imza",
    goal: "Hedef:",
    progress: "Hedefe doğru imzalar",
    addressed_to: "Muhatap",
    form_heading: "Adınızı ekleyin",
    full_name: "Ad soyad",
    email: "E-posta adresi",
    country: "Ülke",
    choose: "Seçin…",
    postal_code: "Posta kodu",
    city: "Şehir",
    signing_as: "Şu sıfatla imzalıyorum",
    as_person: "kişi",
    as_organization: "kuruluş",
    organization: "Kuruluşun adı",
    consent: "Bu kampanya hakkında beni bilgilendirin",
    submit: "İmzala",
    sending: "Gönderiliyor…",
    closed: "Bu dilekçe şu anda imzaya açık değil.",
    thanks_heading: "İmzaladığınız için teşekkürler!",
    thanks_receipt: "Makbuzunuz:",
    thanks_confirm: "Bir adım kaldı: size gönderdiğimiz iletiyi açın ve bağlantısını izleyin. İmzanız onayladığınızda sayılır.",
    problem_heading: "İmzanız henüz alınamadı:",
    field_required: "Lütfen bu alanı doldurun.",
    field_invalid: "Lütfen kontrol edin: doğru görünmüyor.",
    field_too_long: "Bu çok uzun.",
    email_undeliverable: "Bu adrese e-posta ulaştırılamıyor.",
    captcha_needed: "Lütfen robot olmadığınızı doğrulayın.",
    too_many: "Aynı anda çok fazla imza var. Lütfen bir dakika sonra tekrar deneyin.",
    unavailable: "Hizmet meşgul. Lütfen bir dakika sonra tekrar deneyin.",
    refused: "Bu imza reddedildi.",
    sign_on_page: "Dilekçenin sayfasında imzalayın",
};

const AZ: PageWords = PageWords {
    language: "az",
    signatures: "imza",
    goal: "Məqsəd:",
    progress: "Məqsədə doğru imzalar",
    addressed_to: "Ünvan",
    form_heading: "Adınızı əlavə edin",
    full_name: "Ad və soyad",
    email: "E-poçt ünvanı",
    country: "Ölkə",
    choose: "Seçin…",
    postal_code: "Poçt indeksi",
    city: "Şəhər",
    signing_as: "Mən imzalayıram:",
    as_person: "şəxs kimi",
    as_organization: "təşkilat kimi",
    organization: "Təşkilatın adı",
    consent: "Bu kampaniya haqqında mənə məlumat verin",
    submit: "İmzala",
    sending: "Göndərilir…",
    closed: "Bu petisiya hazırda imza üçün açıq deyil.",
    thanks_heading: "İmzaladığınız üçün təşəkkür edirik!",
    thanks_receipt: "Qəbziniz:",
    thanks_confirm: "Bir addım qaldı: sizə göndərdiyimiz məktubu açın və keçidə daxil olun. İmzanız təsdiq etdikdən sonra sayılır.",
    problem_heading: "İmzanız hələ qəbul edilmədi:",
    field_required: "Zəhmət olmasa, bu sahəni doldurun.",
    field_invalid: "Zəhmət olmasa, yoxlayın: düzgün görünmür.",
    field_too_long: "Bu çox uzundur.",
    email_undeliverable: "Bu ünvana məktub çatdırmaq mümkün deyil.",
    captcha_needed: "Zəhmət olmasa, robot olmadığınızı təsdiqləyin.",
    too_many: "Eyni anda çoxlu imza var. Bir dəqiqədən sonra yenidən cəhd edin.",
    unavailable: "Xidmət məşğuldur. Bir dəqiqədən sonra yenidən cəhd edin.",
    refused: "Bu imza rədd edildi.",
    sign_on_page: "Petisiyanın səhifəsində imzalayın",
};

const AR: PageWords = PageWords {
    language: "ar",
    signatures: "توقيعًا",
    goal: "الهدف:",
    progress: "التوقيعات نحو الهدف",
    addressed_to: "موجّهة إلى",
    form_heading: "أضف اسمك",
    full_name: "الاسم الكامل",
    email: "البريد الإلكتروني",
    country: "البلد",
    choose: "اختر…",
    postal_code: "الرمز البريدي",
    city: "المدينة",
    signing_as: "أوقّع بصفتي",
    as_person: "فردًا",
    as_organization: "منظمة",
    organization: "اسم المنظمة",
    consent: "أبقوني على اطلاع بهذه الحملة",
    submit: "وقّع",
    sending: "جارٍ الإرسال…",
    closed: "هذه العريضة غير مفتوحة للتوقيع.",
    thanks_heading: "شكرًا لتوقيعك!",
    thanks_receipt: "إيصالك:",
    thanks_confirm: "بقيت خطوة واحدة: افتح الرسالة التي أرسلناها إليك واتبع الرابط فيها. يُحتسب توقيعك بعد تأكيده.",
    problem_heading: "لم يُقبل توقيعك بعد:",
    field_required: "يرجى ملء هذا الحقل.",
    field_invalid: "يرجى التحقق: هذا لا يبدو صحيحًا.",
    field_too_long: "هذا طويل جدًا.",
    email_undeliverable: "لا يمكن إيصال البريد إلى هذا العنوان.",
    captcha_needed: "يرجى إكمال التحقق من أنك لست روبوتًا.",
    too_many: "توقيعات كثيرة في وقت واحد. يرجى المحاولة بعد دقيقة.",
    unavailable: "الخدمة مشغولة. يرجى المحاولة بعد دقيقة.",
    refused: "رُفض هذا التوقيع.",
    sign_on_page: "وقّع على صفحة العريضة",
};

const ALL: [&PageWords; 6] = [&EN, &FR, &RU, &TR, &AZ, &AR];

/// Every language's words.
pub fn every_language() -> impl Iterator<Item = &'static PageWords> {
    ALL.into_iter()
}

/// The words for `locale`'s language, English when the service does not speak it.
pub fn page_words(locale: &str) -> &'static PageWords {
    let language = locale.split(['-', '_']).next().unwrap_or("");
    ALL.iter()
        .find(|w| w.language.eq_ignore_ascii_case(language))
        .copied()
        .unwrap_or(&EN)
}

impl PageWords {
    /// What a field's error code means to a signer.
    pub fn field_error(&self, field: &str, code: &str) -> &'static str {
        match (field, code) {
            (_, "required") => self.field_required,
            (_, "too_long") => self.field_too_long,
            ("email", "undeliverable") => self.email_undeliverable,
            ("captcha", _) => self.captcha_needed,
            _ => self.field_invalid,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_language_the_notices_speak_has_its_page_words() {
        for language in ["en", "fr", "ru", "tr", "az", "ar"] {
            assert_eq!(page_words(language).language, language);
            assert_eq!(
                undersigned_domain::notices(language).language,
                language,
                "the notices speak {language} too"
            );
        }
        assert_eq!(page_words("fr-CA").language, "fr");
        assert_eq!(page_words("nl").language, "en");
        assert_eq!(
            page_words("ar").field_error("email", "undeliverable"),
            AR.email_undeliverable
        );
    }
}
